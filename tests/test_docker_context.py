"""The build context of model images, without a Docker engine: Dockerfile layers, the locked
requirements, the small hub baked into the image (it loads, its bytes are checked, and it
carries no credential), the package wheel, and the traffic policies the target accepts."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

pytest.importorskip("docker")

from jupyter_modelhub import Hub
from jupyter_modelhub.deploy.docker import context, wheelhouse
from jupyter_modelhub.errors import IntegrityError, InvalidArgument
from jupyter_modelhub.registry.registry import ModelRegistry
from jupyter_modelhub.serving.loading import load_served_model

SECRET = "s3cr3t-Access-Key-0123456789"


@pytest.fixture
def two_versions(hub: Hub, classifier, training_data):
    X, _ = training_data
    v1 = hub.register(classifier, "fraud", sample=X)
    v2 = hub.register(classifier, "fraud", sample=X, reference=X, onnx=True)
    return v1, v2


def test_dockerfile_puts_the_model_in_the_last_layer() -> None:
    text = context.dockerfile("modelhub-base:bookworm", "fraud@v0.0.2", has_packages=True)
    final = text.split("\nFROM ", 2)[2]  # the final stage
    layers = [line.split()[0] for line in final.splitlines()[1:] if line and line[0].isupper()]
    # only metadata (no filesystem layer) after the model's COPY
    assert layers[-2:] == ["COPY", "CMD"]
    assert final.splitlines()[-2].startswith("COPY hub/ /opt/modelhub/hub/")
    assert "--require-hashes" in text and "--no-index" in text
    assert "HEALTHCHECK" in final and "--healthcheck" in final
    # nothing version-specific before the model layer, so those layers are shared
    before_model = final.split("COPY hub/")[0]
    assert "fraud" not in before_model and "v0.0.2" not in before_model


def test_requirements_come_from_the_lineage_and_the_flavor(two_versions) -> None:
    v1, v2 = two_versions
    env = v1.meta.lineage.environment
    assert context.model_requirements([v1]) == sorted(
        [
            f"joblib=={env['joblib']}",
            f"scikit-learn=={env['scikit-learn']}",
            f"scipy=={env['scipy']}",
            wheelhouse.host_pins(["threadpoolctl"])[0],
        ],
        key=str.lower,
    )
    # with an ONNX file the server prefers onnxruntime: it is needed too
    assert any(r.startswith("onnxruntime==") for r in context.model_requirements([v2]))


def test_requirements_of_versions_that_disagree_are_refused(two_versions) -> None:
    v1, v2 = two_versions
    other = v2.meta.lineage.__class__(environment={"scikit-learn": "0.24.2"})
    odd = v2.__class__(
        meta=v2.meta.__class__(**{**v2.meta.__dict__, "lineage": other}),
        tag=v2.tag,
        commit=v2.commit,
    )
    with pytest.raises(InvalidArgument, match="different versions of scikit-learn"):
        context.model_requirements([v1, odd])


def test_the_small_hub_serves_its_versions_and_nothing_else(
    hub: Hub, two_versions, classifier, training_data, tmp_path: Path
) -> None:
    v1, v2 = two_versions
    X, _ = training_data
    hub.register(classifier, "other", sample=X)
    # a DVC remote with a credential in config.local (never in git)
    (hub.path / ".dvc" / "config.local").write_text(
        f"['remote \"storage\"']\n    url = s3://bucket/models\n    secret_access_key = {SECRET}\n"
    )
    dest = tmp_path / "small"
    context.write_model_hub(hub.registry, [v2, v1], dest)
    small = ModelRegistry(dest)
    assert [m.name for m in small.ls()] == ["fraud"]
    assert {v.version for v in small.versions("fraud")} == {"v0.0.1", "v0.0.2"}
    for ref, runtime in (("fraud@v0.0.1", "sklearn"), ("fraud@v0.0.2", "onnx")):
        served = load_served_model(small, ref, runtime)
        assert served.version_id == ref.split("@")[1]
    assert small.show("fraud@v0.0.2").meta == v2.meta
    everything = b"".join(p.read_bytes() for p in dest.rglob("*") if p.is_file())
    assert SECRET.encode() not in everything
    assert b"s3://bucket" not in everything
    assert not (dest / ".dvc" / "config.local").exists()
    assert hub.show("other").meta.artifact.md5 not in everything.decode("latin-1")


def test_a_corrupt_artifact_is_not_copied(hub: Hub, two_versions, tmp_path: Path) -> None:
    v1, _ = two_versions
    (_, md5), *_ = hub.registry.dvc.tree_entries(v1.meta.artifact)
    obj = hub.registry.dvc.object_path(md5)
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes()[:-3] + b"xyz")
    with pytest.raises(IntegrityError, match="corrupt"):
        context.write_model_hub(hub.registry, [v1], tmp_path / "small")


def test_the_package_wheel_is_reproducible(tmp_path: Path) -> None:
    first = wheelhouse._write_package_wheel(tmp_path / "a")
    second = wheelhouse._write_package_wheel(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "jupyter_modelhub/modelserver/__main__.py" in names
    assert "jupyter_modelhub/deploy/docker/entrypoint.py" in names
    assert not any("labextension" in n or "__pycache__" in n for n in names)
    assert any(n.endswith(".dist-info/RECORD") for n in names)


def test_every_traffic_policy_is_honoured(hub: Hub) -> None:
    """Splits and canaries too: their guardrails and steps are the docker target's experiment
    controller's (``deploy.watch``; against a real engine in ``test_docker_experiments``)."""
    from jupyter_modelhub.deploy import watch
    from jupyter_modelhub.deploy.docker import DockerBackend
    from jupyter_modelhub.deploy.spec import DeploymentSpec
    from jupyter_modelhub.experiments.policy import TrafficPolicy

    backend = DockerBackend(hub.registry, client=object())
    assert backend.traffic_kinds == {"split", "canary", "bluegreen", "shadow"}
    spec = DeploymentSpec("fraud", "fraud", "fraud@v0.0.1", "v0.0.1", target="docker")
    for kind in ("split", "canary", "bluegreen", "shadow"):
        policy = TrafficPolicy(
            kind=kind,  # type: ignore[arg-type]
            experiment="e1",
            challengers={"challenger": "v0.0.2"},
            weights={"challenger": 0.5, "champion": 0.5},
            steps=(0.5,) if kind == "canary" else (),
        )
        backend.check_traffic(spec.replace(traffic=policy))
        running = spec.replace(traffic=policy)
        assert watch.needs_controller(running) == (kind in ("split", "canary"))
        assert not watch.needs_controller(running.replace(traffic=policy.replace(state="stopped")))
    assert not watch.needs_controller(spec)
