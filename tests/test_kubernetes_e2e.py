"""End to end on a live cluster (kind, minikube, a real one): deploy, update, a failed rollout
reported with the pod's reason, rollback, logs, stop twice; a canary watched from this machine.

Deselected unless a cluster is configured; see README "Kubernetes target" for running it with
kind. It needs:

- a kubeconfig (``KUBECONFIG``, or ``~/.kube/config``) whose current context (or
  ``MODELHUB_K8S_CONTEXT``) is the cluster;
- ``MODELHUB_K8S_IMAGE``: an image with jupyter-modelhub, git and dvc that the cluster can run
  (``kind load docker-image IMAGE``);
- ``MODELHUB_K8S_HUB``: a hub whose versions pods can fetch: its ``origin`` git remote and its
  DVC remote reachable from the cluster (``MODELHUB_K8S_SECRET`` names a Secret with the
  remote's credentials), or, with ``MODELHUB_K8S_SOURCE=image``, baked into the image at
  ``MODELHUB_K8S_HUB_PATH`` (default ``/hub``). Its model ``MODELHUB_K8S_MODEL`` (default
  ``fraud``) needs two versions, v0.0.1 and v0.0.2.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import BackendError

pytest.importorskip("kubernetes")


def _kubeconfig() -> bool:
    paths = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    return any(Path(p).is_file() for p in paths.split(os.pathsep))


pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.skipif(
        not (_kubeconfig() and os.environ.get("MODELHUB_K8S_IMAGE")),
        reason="needs a live cluster: a kubeconfig and MODELHUB_K8S_IMAGE (see README, "
        "'Kubernetes target', to run it with kind)",
    ),
]

MODEL = os.environ.get("MODELHUB_K8S_MODEL", "fraud")
NAME = f"{MODEL}-e2e"


@pytest.fixture
def cluster_hub():
    hub = Hub(os.environ["MODELHUB_K8S_HUB"])
    options = {
        "namespace": os.environ.get("MODELHUB_K8S_NAMESPACE", "default"),
        "context": os.environ.get("MODELHUB_K8S_CONTEXT"),
        "image": os.environ["MODELHUB_K8S_IMAGE"],
        "image_pull_policy": "IfNotPresent",
        "source": os.environ.get("MODELHUB_K8S_SOURCE", "dvc"),
        "hub_path": os.environ.get("MODELHUB_K8S_HUB_PATH", "/hub"),
        "secret": os.environ.get("MODELHUB_K8S_SECRET"),
    }
    hub.stop(NAME)
    yield hub, {k: v for k, v in options.items() if v is not None}
    hub.stop(NAME)


def test_deploy_update_fail_rollback_stop_on_a_live_cluster(cluster_hub):
    hub, options = cluster_hub
    status = hub.deploy(
        f"{MODEL}@v0.0.1", NAME, target="kubernetes", replicas=2, target_options=options
    )
    assert (status.phase, status.serving_version, status.ready_replicas) == ("running", "v0.0.1", 2)
    status = hub.update(NAME, "v0.0.2", timeout=300)
    assert status.serving_version == "v0.0.2"
    assert all(r.version == "v0.0.2" for r in status.replicas if r.health == "ready")
    assert hub.deployment_logs(NAME, 20) is not None

    # a version whose pods cannot start: the rollout fails with the pod's reason, and the
    # old pods keep serving
    # (its image, in the options committed with its spec)
    store = hub._deployments.store
    current = store.require(NAME)
    broken = {**current.target_options, "image": "modelhub-e2e/does-not-exist:0"}
    store.save(current.replace(target_options=broken), f"Break the image of {NAME}")
    with pytest.raises(BackendError, match=r"ImagePullBackOff|ErrImage|ProgressDeadline"):
        hub.update(NAME, "v0.0.1", timeout=180)
    assert hub.deployment(NAME).serving_version == "v0.0.2"

    status = hub.rollback(NAME, 2, timeout=300)  # revision 2: v0.0.2 with the good image
    assert (status.phase, status.serving_version) == ("running", "v0.0.2")
    assert hub.stop(NAME) is True
    assert hub.stop(NAME) is False


def test_a_canary_is_watched_from_this_machine_through_the_pod_proxy(cluster_hub):
    """The experiment controller runs here and reads each pod's /metrics through the API
    server (needs ``get`` on ``pods/proxy``); stopping the deployment stops it."""
    from jupyter_modelhub.deploy import watch
    from jupyter_modelhub.deploy.kubernetes.watch import PodProxySource
    from jupyter_modelhub.deploy.runtime import RuntimeFolder

    hub, options = cluster_hub
    hub.deploy(f"{MODEL}@v0.0.1", NAME, target="kubernetes", target_options=options)
    status = hub.ab_start(
        NAME, "v0.0.2", kind="canary", steps="10,50,100", dwell_seconds=600, timeout=300
    )
    assert status.phase == "running" and (status.controller or "").startswith("running (pid ")
    spec = hub._deployments.store.require(NAME)
    source = PodProxySource(hub.registry, NAME)
    pods = source.targets(spec)
    assert pods, "no ready pod of the canary's template"
    assert "# TYPE modelhub_" in source.fetch(pods[0])
    assert hub.stop(NAME) is True
    assert watch.controller_pid(RuntimeFolder(hub.path, NAME)) is None


def test_the_pods_log_chunks_are_copied_here_through_exec(cluster_hub, caplog):
    """``collect_logs`` runs tar in each pod through the API server's exec (needs ``create``
    on ``pods/exec``, and sh, tar and base64 in the image) and copies the chunks here."""
    from jupyter_modelhub.deploy.kubernetes import KubernetesBackend
    from jupyter_modelhub.deploy.kubernetes.manifests import PREDICTIONS_DIR
    from jupyter_modelhub.deploy.kubernetes.podlogs import exec_in_pod
    from jupyter_modelhub.deploy.kubernetes.watch import PodProxySource
    from jupyter_modelhub.deploy.runtime import RuntimeFolder

    hub, options = cluster_hub
    hub.deploy(f"{MODEL}@v0.0.1", NAME, target="kubernetes", target_options=options)
    spec = hub._deployments.store.require(NAME)
    source = PodProxySource(hub.registry, NAME)
    (pod,) = source.targets(spec)
    chunk = "20990101T000000-1-e2e000-000001.parquet"  # a name no server writes
    exec_in_pod(
        source._core(),
        source.options.namespace,
        pod,
        ["sh", "-c", f"printf PAR1 > {PREDICTIONS_DIR}/feedback/{chunk}"],
    )
    backend = KubernetesBackend(hub.registry)
    with caplog.at_level("WARNING"):
        assert backend.collect_logs(spec) >= 1
        assert backend.collect_logs(spec) == 0
    assert "Could not collect" not in caplog.text
    here = RuntimeFolder(hub.path, NAME).predictions / "feedback"
    copied = here / chunk.replace(".parquet", f".{pod}.parquet")
    assert copied.read_bytes() == b"PAR1"
    copied.unlink()  # not a real chunk: the readers must not meet it
    assert hub.stop(NAME) is True
