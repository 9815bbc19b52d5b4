"""The Kubernetes target's manifests: valid against the official schemas, and saying what the
model server needs (probes, labels, scrape annotations, args, model source, autoscaling)."""

from __future__ import annotations

import json
import subprocess

import kubernetes_validate
import pytest
import yaml

from jupyter_modelhub.deploy.kubernetes import (
    KubernetesBackend,
    KubernetesOptions,
    render_manifests,
)
from jupyter_modelhub.deploy.kubernetes.manifests import (
    HUB_URL_ENV,
    TEMPLATE_LABEL,
    build_manifests,
    fetch_script,
    to_yaml,
)
from jupyter_modelhub.deploy.spec import DeploymentSpec
from jupyter_modelhub.errors import InvalidArgument, NotFound
from jupyter_modelhub.experiments.policy import TrafficPolicy

# two Kubernetes versions (kubernetes-validate 1.37 carries the schemas of 1.25 to 1.37)
VERSIONS = ("1.30", "1.33")
HUB_URL = "https://git.example.org/team/hub.git"


def spec(**changes) -> DeploymentSpec:
    base = DeploymentSpec(
        name="fraud-api",
        model="fraud",
        ref="fraud#prod",
        version="v0.0.2",
        target="kubernetes",
        replicas=3,
        port=8080,
        server={"max_batch_size": 16, "runtime": "onnx"},
    )
    return base.replace(**changes)


def policy(kind: str, **changes) -> TrafficPolicy:
    weights = {"challenger": 0.1, "champion": 0.9}
    extra: dict = {}
    if kind == "canary":
        extra = {"steps": (0.1, 0.5, 1.0)}
    if kind in ("shadow", "bluegreen"):
        weights = {"challenger": 0.0, "champion": 1.0}
    return TrafficPolicy(
        kind=kind,
        experiment="exp-1",
        challengers={"challenger": "v0.0.3"},
        weights=weights,
        **{**extra, **changes},
    )


OPTION_SETS = {
    "dvc": KubernetesOptions(namespace="ml", image="registry.example.org/modelhub:1.0"),
    "dvc-secret-hpa": KubernetesOptions(
        namespace="ml", secret="dvc-remote", hpa_min=2, hpa_max=10, hpa_cpu=70, cpu_limit="2"
    ),
    "image": KubernetesOptions(source="image", hub_path="/opt/hub", service_type="LoadBalancer"),
}
SPECS = {"plain": spec(), "shadow": spec(traffic=policy("shadow"))}


def by_kind(docs):
    return {doc["kind"]: doc for doc in docs}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("options", list(OPTION_SETS), ids=str)
@pytest.mark.parametrize("which", list(SPECS), ids=str)
def test_every_manifest_validates_strictly(version, options, which):
    docs = build_manifests(SPECS[which], OPTION_SETS[options], hub_url=HUB_URL)
    assert [d["kind"] for d in docs][:2] == ["Deployment", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    # what is printed for GitOps is the same objects
    assert list(yaml.safe_load_all(to_yaml(docs))) == docs


def test_a_manifest_with_an_unknown_field_fails_validation():
    """The validation is real: a typo in a field is caught (strict mode)."""
    doc = build_manifests(spec(), OPTION_SETS["dvc"], hub_url=HUB_URL)[0]
    doc["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)


def test_deployment_probes_labels_annotations_security():
    deployment = by_kind(build_manifests(spec(), OPTION_SETS["dvc"], hub_url=HUB_URL))["Deployment"]
    labels = deployment["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/name": "fraud",
        "app.kubernetes.io/instance": "fraud-api",
        "app.kubernetes.io/version": "v0.0.2",
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "jupyter-modelhub",
    }
    body = deployment["spec"]
    assert body["replicas"] == 3
    assert body["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    # the selector never names a version (it is immutable), the pods carry them all
    assert body["selector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "fraud-api",
        "app.kubernetes.io/managed-by": "jupyter-modelhub",
    }
    template = body["template"]
    assert labels.items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    assert template["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (server,) = pod["containers"]
    assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert server["securityContext"]["allowPrivilegeEscalation"] is False
    assert server["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert server["image"] == "registry.example.org/modelhub:1.0"
    argv = server["command"] + server["args"]
    assert argv[:4] == ["python", "-m", "jupyter_modelhub.modelserver", "fraud@v0.0.2"]
    flags = dict(zip(argv[4::2], argv[5::2], strict=False))
    assert flags["--hub"] == "/hub"
    assert flags["--host"] == "0.0.0.0"
    assert flags["--port"] == "8080"
    assert flags["--max-batch-size"] == "16"
    assert flags["--runtime"] == "onnx"
    assert "--traffic" not in flags


def test_the_traffic_policy_is_passed_to_every_pod():
    served = spec(traffic=policy("shadow"))
    deployment = build_manifests(served, OPTION_SETS["dvc"], hub_url=HUB_URL)[0]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    args = server["args"]
    traffic = json.loads(args[args.index("--traffic") + 1])
    assert traffic == served.traffic.to_dict()
    # the init container fetches every variant
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert "fraud@v0.0.2 fraud@v0.0.3" in init["command"][2]
    # a new policy is a new pod template: a rollout, on its own label
    plain = build_manifests(spec(), OPTION_SETS["dvc"], hub_url=HUB_URL)[0]
    label = deployment["spec"]["template"]["metadata"]["labels"][TEMPLATE_LABEL]
    assert label != plain["spec"]["template"]["metadata"]["labels"][TEMPLATE_LABEL]


def test_an_ended_experiment_serves_the_champion_alone():
    ended = spec(traffic=policy("shadow", state="stopped"))
    (server,) = build_manifests(ended, OPTION_SETS["dvc"], hub_url=HUB_URL)[0]["spec"]["template"][
        "spec"
    ]["containers"]
    assert "--traffic" not in server["args"]


def test_the_dvc_source_clones_and_pulls_with_the_secret():
    deployment = build_manifests(spec(), OPTION_SETS["dvc-secret-hpa"], hub_url=None)[0]
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["envFrom"] == [{"secretRef": {"name": "dvc-remote"}}]
    assert HUB_URL_ENV not in {e["name"] for e in init["env"]}  # the Secret gives it
    assert {"name": "hub", "emptyDir": {}} in pod["volumes"]
    server = pod["containers"][0]
    assert "envFrom" not in server  # the remote's credentials stay in the init container
    assert {"name": "hub", "mountPath": "/hub"} in server["volumeMounts"]
    # with an autoscaler, it owns the replica count
    assert "replicas" not in deployment["spec"]
    hpa = by_kind(build_manifests(spec(), OPTION_SETS["dvc-secret-hpa"], hub_url=None))[
        "HorizontalPodAutoscaler"
    ]
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["maxReplicas"] == 10
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70


def test_the_fetch_script_is_valid_shell_and_needs_a_url():
    script = fetch_script(spec(traffic=policy("shadow")), "/hub")
    subprocess.run(["sh", "-n", "-c", script], check=True)
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={})
    assert proc.returncode == 2
    assert HUB_URL_ENV in proc.stderr


def test_the_image_source_has_no_init_container():
    docs = build_manifests(spec(), OPTION_SETS["image"], hub_url=None)
    pod = docs[0]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["args"][2] == "/opt/hub"
    assert docs[1]["spec"]["type"] == "LoadBalancer"
    assert len(docs) == 2  # no autoscaler


@pytest.mark.parametrize(
    "given",
    [
        {"namespace": "Not_A_Name"},
        {"hpa_min": 3, "hpa_max": 2},
        {"hpa_min": 2},
        {"cpu_request": "lots"},
        {"source": "s3"},
        {"colour": "blue"},
    ],
)
def test_bad_options_are_refused(given):
    with pytest.raises(InvalidArgument):
        KubernetesOptions().merged(given)


# -- through the hub ------------------------------------------------------------------------------
@pytest.fixture
def registered(hub, classifier):
    hub.register(classifier, "fraud")
    return hub


def test_hub_manifests_of_a_model_reference(registered):
    hub = registered
    hub.registry.dvc.add_remote("s3://bucket/hub")
    hub.registry.git.run("remote", "add", "origin", HUB_URL)
    text = hub.manifests("fraud@v0.0.1", namespace="ml", image="me/modelhub:1", hpa_max=4)
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    init = docs[0]["spec"]["template"]["spec"]["initContainers"][0]
    assert {"name": HUB_URL_ENV, "value": HUB_URL} in init["env"]
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_hub_manifests_never_write_a_credential(registered):
    hub = registered
    hub.registry.dvc.add_remote("s3://bucket/hub")
    hub.registry.git.run("remote", "add", "origin", "https://user:s3cret@git.example.org/hub.git")
    with pytest.raises(InvalidArgument, match="credential") as info:
        hub.manifests("fraud")
    assert "s3cret" not in str(info.value)
    # with a Secret that holds the URL, the manifests name the Secret only
    text = hub.manifests("fraud", secret="hub-remote")
    assert "s3cret" not in text and "hub-remote" in text
    with pytest.raises(InvalidArgument, match="credential"):
        hub.manifests("fraud", hub_url="https://x:tok@git.example.org/hub.git")


def test_hub_manifests_need_a_reachable_remote(registered):
    hub = registered
    with pytest.raises(InvalidArgument, match="no DVC remote"):
        hub.manifests("fraud", hub_url=HUB_URL)
    hub.registry.dvc.add_remote(str(hub.path.parent / "remote"))
    with pytest.raises(InvalidArgument, match="cannot reach"):
        hub.manifests("fraud", hub_url=HUB_URL)
    # a hub baked into the image needs neither
    assert "initContainers" not in hub.manifests("fraud", source="image")
    with pytest.raises(NotFound):
        hub.manifests("nothing-here")


def test_render_refuses_a_policy_the_target_cannot_honour(registered):
    hub = registered
    from jupyter_modelhub.deploy.store import DeploymentStore

    DeploymentStore(hub.registry).save(
        spec(name="fraud", traffic=policy("bluegreen")), "a blue-green on kubernetes"
    )
    with pytest.raises(InvalidArgument, match="cannot run a bluegreen"):
        render_manifests(hub.registry, "fraud", {"source": "image"})
    assert KubernetesBackend.traffic_kinds == {"split", "canary", "shadow"}


def test_render_carries_a_split_in_every_pod(registered):
    hub = registered
    from jupyter_modelhub.deploy.store import DeploymentStore

    DeploymentStore(hub.registry).save(spec(name="fraud", traffic=policy("split")), "a split")
    (deployment, *_) = yaml.safe_load_all(
        render_manifests(hub.registry, "fraud", {"source": "image"})
    )
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    carried = json.loads(args[args.index("--traffic") + 1])
    assert carried["kind"] == "split" and carried["weights"]["challenger"] == 0.1
    kubernetes_validate.validate(deployment, "1.33", strict=True)


# -- the command line -----------------------------------------------------------------------------
def test_modelhub_manifests_prints_yaml_for_gitops(registered, capsys):
    from jupyter_modelhub.cli import main

    hub = registered
    argv = ["--hub", str(hub.path), "manifests", "fraud@v0.0.1", "--namespace", "ml"]
    code = main([*argv, "--image", "me/modelhub:1", "--source", "image", "--hpa-max", "3"])
    assert code == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    assert {d["metadata"]["namespace"] for d in docs} == {"ml"}
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "me/modelhub:1"
    # a user mistake is one line and exit code 2
    assert main([*argv, "--hpa-min", "5", "--hpa-max", "3", "--source", "image"]) == 2
    assert "autoscaling range" in capsys.readouterr().err


def test_manifests_of_a_deployment_use_the_options_committed_with_it(registered, capsys):
    from jupyter_modelhub.cli import main
    from jupyter_modelhub.deploy.store import DeploymentStore

    hub = registered
    committed = {"namespace": "ml", "image": "me/modelhub:2", "source": "image", "hpa_max": 3}
    DeploymentStore(hub.registry).save(
        spec(name="fraud-api", target_options=committed), "Deploy fraud-api on kubernetes"
    )
    assert main(["--hub", str(hub.path), "manifests", "fraud-api"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    assert {d["metadata"]["namespace"] for d in docs} == {"ml"}
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "me/modelhub:2"
    # flags go on top of them, for this print only
    text = hub.manifests("fraud-api", namespace="staging")
    assert {d["metadata"]["namespace"] for d in yaml.safe_load_all(text)} == {"staging"}
    assert DeploymentStore(hub.registry).require("fraud-api").target_options == committed
