"""The docker target against a real Docker engine: images (layers reused across versions),
containers that serve, a zero-downtime update under load, rollback, stop, logs, a version
that cannot load, and a shadow (splits and canaries: ``test_docker_experiments.py``).

The engine is the one ``docker info`` reaches (``.ci/test`` starts one); failing that, and as
root, a private ``dockerd`` is started here (``--bridge=none --iptables=false``, data in a
temporary folder) and stopped at the end. Without an engine the tests skip, saying why. The
base image is built once per session if the engine does not have it (debootstrap, ~1 min).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

docker = pytest.importorskip("docker")

from test_deploy import wait_for  # noqa: E402

from jupyter_modelhub import Hub  # noqa: E402
from jupyter_modelhub.deploy.docker.baseimage import DEFAULT_BASE_IMAGE  # noqa: E402
from jupyter_modelhub.errors import BackendError, NotFound  # noqa: E402

pytestmark = pytest.mark.slow
TIMINGS: dict[str, float] = {}


def _client_answers(base_url: str | None = None) -> object | None:
    try:
        client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        client.ping()
        return client
    except Exception:
        return None


@pytest.fixture(scope="session")
def docker_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A client of a running engine: the configured one, else a private dockerd."""
    client = _client_answers()
    if client is not None:
        yield client
        return
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("no Docker engine answers, and this is not root with dockerd to start one")
    root = Path(tempfile.mkdtemp(prefix="modelhub-dockerd-"))
    socket = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "dockerd",
            "--bridge=none",
            "--iptables=false",
            "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "docker.pid"),
            "--host", socket,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while (client := _client_answers(socket)) is None and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    if client is None:
        proc.terminate()
        proc.wait(timeout=20)
        tail = (root / "dockerd.log").read_text(errors="replace").strip().splitlines()[-3:]
        pytest.skip("dockerd did not start: " + " | ".join(tail))
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = socket
    try:
        yield client
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        _unmount_under(root)  # dockerd leaves exec/netns/default mounted
        shutil.rmtree(root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    mounts = Path("/proc/mounts").read_text().splitlines()
    for point in sorted((m.split()[1] for m in mounts), reverse=True):
        if point.startswith(f"{root}/"):
            subprocess.run(["umount", "-l", point], check=False)


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The base image, built once if the engine does not have it."""
    try:
        docker_client.images.get(DEFAULT_BASE_IMAGE)
        return DEFAULT_BASE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip(
            f"{DEFAULT_BASE_IMAGE} is missing and cannot be built (needs root + debootstrap)"
        )
    started = time.monotonic()
    Hub.build_base_image(progress=lambda line: print(line, file=sys.stderr))
    TIMINGS["base image"] = time.monotonic() - started
    return DEFAULT_BASE_IMAGE


@pytest.fixture(scope="module")
def docker_hub(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Hub]:
    """A hub with v0.0.1 and v0.0.2 of ``fraud`` (different answers) and v0.0.3, which no
    container can load (its class lives in the tests' folder)."""
    from flaky_models import FailsOnRealInput
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)
    hub = Hub.init(tmp_path_factory.mktemp("docker") / "hub")
    hub.register(LogisticRegression().fit(X, y), "fraud", sample=X)
    hub.register(LogisticRegression().fit(X, 1 - y), "fraud", sample=X)
    hub.register(FailsOnRealInput().fit(X, y), "fraud", sample=X)
    yield hub
    for name in ("fraud", "shadowed"):
        try:
            hub.stop(name)
        except Exception as exc:  # the test itself reports what went wrong
            print(f"cleanup of {name}: {exc}", file=sys.stderr)


@pytest.fixture(scope="module")
def images(docker_hub: Hub, docker_client) -> dict[str, object]:
    """v0.0.1 then v0.0.2: the second build reuses every layer but the model's."""
    built = {}
    for version in ("v0.0.1", "v0.0.2"):
        lines: list[str] = []
        built[version] = docker_hub.build(f"fraud@{version}", progress=lines.append)
        assert any(line.startswith("Step ") for line in lines)  # the engine's output streamed
        TIMINGS[f"build {version}"] = built[version].seconds
    return built


ROW = [0.8, -0.3, 0.1, 0.5]


def infer(endpoint: str, timeout: float = 5.0) -> dict:
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    ).encode()
    request = urllib.request.Request(
        f"{endpoint}/v2/models/fraud/infer",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class Load:
    """Requests, one connection each, at a bounded rate, from a thread; counts failures."""

    def __init__(self, endpoint: str, interval: float = 0.005) -> None:
        self.endpoint, self.interval = endpoint, interval
        self.ok = 0
        self.failures: list[str] = []
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.versions.append(infer(self.endpoint)["model_version"])
                self.ok += 1
            except (OSError, urllib.error.URLError, ValueError) as exc:
                self.failures.append(repr(exc))
            time.sleep(self.interval)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def labelled(client, name: str) -> list:
    return client.containers.list(all=True, filters={"label": f"modelhub.deployment={name}"})


def test_a_new_version_rebuilds_only_the_model_layer(images, docker_client) -> None:
    first, second = images["v0.0.1"], images["v0.0.2"]
    layers = [docker_client.images.get(i.tag).attrs["RootFS"]["Layers"] for i in (first, second)]
    assert layers[0][:-1] == layers[1][:-1]  # base, packages, app: the same layers
    assert layers[0][-1] != layers[1][-1]  # the model
    assert second.cached_steps >= 8  # every step before the model's COPY came from the cache
    if first.cached_steps < second.cached_steps:  # else the engine had v0.0.1's layers too
        assert second.seconds < first.seconds
    labels = docker_client.images.get(second.tag).labels
    assert labels["modelhub.model"] == "fraud" and labels["modelhub.version"] == "v0.0.2"
    print(f"\nbuild times: {TIMINGS}", file=sys.stderr)


def test_deploy_update_under_load_rollback_stop(docker_hub: Hub, images, docker_client) -> None:
    started = time.monotonic()
    status = docker_hub.deploy("fraud@v0.0.1", "fraud", target="docker", replicas=2)
    TIMINGS["deploy"] = time.monotonic() - started
    assert status.target == "docker" and status.phase == "running"
    assert [r.health for r in status.replicas] == ["ready", "ready"]
    assert {r.port for r in status.replicas} == {int(status.endpoint.rsplit(":", 1)[1])}
    assert infer(status.endpoint)["model_version"] == "v0.0.1"
    containers = labelled(docker_client, "fraud")
    assert len(containers) == 2
    assert containers[0].labels["app.kubernetes.io/managed-by"] == "jupyter-modelhub"
    assert containers[0].attrs["HostConfig"]["NetworkMode"] == "host"

    with Load(status.endpoint) as load:
        wait_for(lambda: load.ok >= 20, 20, "the load to flow before the update")
        started = time.monotonic()
        status = docker_hub.update("fraud", "v0.0.2")
        TIMINGS["update"] = time.monotonic() - started
        after = load.ok
        wait_for(lambda: load.ok >= after + 20, 20, "answers after the update")
    TIMINGS["requests during update"] = load.ok
    assert load.failures == [], load.failures[:3]
    assert load.ok > 50 and load.versions[0] == "v0.0.1" and load.versions[-1] == "v0.0.2"
    assert status.serving_version == "v0.0.2" and status.phase == "running"
    assert {c.labels["modelhub.version"] for c in labelled(docker_client, "fraud")} == {"v0.0.2"}
    assert infer(status.endpoint)["model_version"] == "v0.0.2"

    # the old containers drained: their prediction logs are in the runtime folder
    predictions = docker_hub.path / ".modelhub" / "runtime" / "deployments" / "fraud"
    assert any((predictions / "predictions").rglob("*.parquet"))
    logs = docker_hub.deployment_logs("fraud", tail=200)
    assert any("MODELHUB-READY" in line and "v0.0.1" in line for line in logs)
    assert any(line.startswith("[v0.0.2 slot 1] MODELHUB-READY") for line in logs)

    status = docker_hub.rollback("fraud")
    assert status.serving_version == "v0.0.1"
    assert infer(status.endpoint)["model_version"] == "v0.0.1"

    assert docker_hub.stop("fraud") is True
    assert labelled(docker_client, "fraud") == []
    assert docker_hub.stop("fraud") is False  # idempotent
    with pytest.raises(NotFound):
        docker_hub.deployment("fraud")
    with pytest.raises(OSError):
        infer(status.endpoint, timeout=2)
    print(f"\ntimings: {TIMINGS}", file=sys.stderr)


def test_a_version_that_cannot_load_leaves_the_old_one_serving(
    docker_hub: Hub, images, docker_client
) -> None:
    status = docker_hub.deploy("fraud@v0.0.2", "fraud", target="docker")
    with pytest.raises(BackendError, match="flaky_models") as err:
        docker_hub.update("fraud", "v0.0.3")
    assert "fraud@v0.0.3" in str(err.value)  # the server's own reason, naming the version
    assert infer(status.endpoint)["model_version"] == "v0.0.2"
    assert {c.labels["modelhub.version"] for c in labelled(docker_client, "fraud")} == {"v0.0.2"}
    assert any("flaky_models" in line for line in docker_hub.deployment_logs("fraud"))
    after = docker_hub.deployment("fraud")
    assert after.phase == "running" and after.serving_version == "v0.0.2"
    assert "flaky_models" in (after.last_error or "")  # the failed update, as for local
    docker_hub.stop("fraud")


def test_shadow_runs_in_the_containers(docker_hub: Hub, images, docker_client) -> None:
    status = docker_hub.deploy("fraud@v0.0.1", "shadowed", target="docker")
    port = int(status.endpoint.rsplit(":", 1)[1])
    with pytest.raises(BackendError, match=f"Port {port} is served by the docker deployment"):
        docker_hub.deploy("fraud@v0.0.2", "intruder", target="docker", port=port)
    docker_hub.stop("intruder")

    status = docker_hub.ab_start("shadowed", "v0.0.2", kind="shadow")
    assert status.controller is None  # a shadow has no guardrail to judge
    (container,) = labelled(docker_client, "shadowed")
    assert "--traffic" in container.attrs["Args"]
    for _ in range(5):
        assert infer(status.endpoint)["model_version"] == "v0.0.1"  # callers get the champion
    admin = docker_hub.deployment("shadowed").replicas[0].admin_port
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read()
    assert b'variant="challenger"' in metrics and b'version="v0.0.2"' in metrics

    docker_hub.ab_stop("shadowed")
    (container,) = labelled(docker_client, "shadowed")
    assert "--traffic" not in container.attrs["Args"]
    # the image's HEALTHCHECK asks the server's admin port (first check after 5 s)
    deadline = time.monotonic() + 20
    while container.attrs["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, container.attrs["State"]["Health"]
        time.sleep(0.5)
        container.reload()
    assert "(healthy)" in docker_hub.deployment("shadowed").replicas[0].state
    assert docker_hub.stop("shadowed") is True


def test_build_from_a_terminal(
    docker_hub: Hub, images, docker_client, capsys: pytest.CaptureFixture[str]
) -> None:
    from jupyter_modelhub import cli

    hub = str(docker_hub.path)
    assert cli.main(["--hub", hub, "build", "fraud@v0.0.1", "--base-image", "nowhere:1"]) == 2
    out, err = capsys.readouterr()
    assert "The base image nowhere:1 is not in the Docker engine" in out + err
    assert "Traceback" not in out + err

    # the image of v0.0.2 exists: a rebuild under another tag is the model's layer only
    code = cli.main(["--hub", hub, "build", "fraud@v0.0.2", "--tag", "fraud-api:test", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    built = json.loads(out)
    assert built["tag"] == "fraud-api:test" and built["versions"] == ["v0.0.2"]
    assert built["cached_steps"] >= 8
    assert "Step 1/" in err  # the engine's output, streamed on stderr
    docker_client.images.remove("fraud-api:test")


def test_another_hubs_version_of_the_same_name_gets_its_own_image(
    images, docker_client, tmp_path: Path
) -> None:
    """``modelhub/fraud:v0.0.1`` of another hub holds other weights: it is not reused."""
    from sklearn.linear_model import LogisticRegression

    from jupyter_modelhub.deploy.docker import DockerBackend
    from jupyter_modelhub.deploy.spec import DeploymentSpec

    rng = np.random.default_rng(7)
    X = rng.normal(size=(100, 4))
    other = Hub.init(tmp_path / "other")
    other.register(LogisticRegression().fit(X, (X[:, 1] > 0).astype(int)), "fraud", sample=X)
    backend = DockerBackend(other.registry, client=docker_client)
    spec = DeploymentSpec("fraud", "fraud", "fraud@v0.0.1", "v0.0.1", target="docker")
    image_id = backend.image_for(spec)
    assert image_id != images["v0.0.1"].image_id
    labels = docker_client.images.get(image_id).labels
    assert labels["modelhub.artifacts"] == f"v0.0.1={other.show('fraud').meta.artifact.md5}"
    assert backend.image_for(spec) == image_id  # now found, not built again
