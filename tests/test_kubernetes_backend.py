"""``KubernetesBackend`` driving the real ``kubernetes`` client against kmock's API emulator.

kmock stores objects (create, read, patch, delete, 404, 409) but runs no controller, so each
test plays the Deployment controller and the kubelet itself (``Cluster``): it writes the
Deployment's status and the pods of its current template into the emulator, ready or failing,
while the backend waits for the rollout in a thread (the sync client stays off kmock's loop).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import numpy as np
import pytest
import yaml
from kmock._internal import enums
from kubernetes import client
from prometheus_client import CollectorRegistry, Counter, generate_latest

from jupyter_modelhub.deploy import watch
from jupyter_modelhub.deploy.kubernetes import (
    KubernetesBackend,
    KubernetesOptions,
    backend,
    podlogs,
)
from jupyter_modelhub.deploy.kubernetes.manifests import (
    CONTAINER_PORT,
    PREDICTIONS_DIR,
    TEMPLATE_LABEL,
)
from jupyter_modelhub.deploy.runtime import RuntimeFolder
from jupyter_modelhub.deploy.spec import DeploymentSpec
from jupyter_modelhub.deploy.store import DeploymentStore
from jupyter_modelhub.errors import BackendError, InvalidArgument
from jupyter_modelhub.experiments.policy import TrafficPolicy
from jupyter_modelhub.models import FeatureSpec
from jupyter_modelhub.serving.features import FeatureBatch, FeatureSchema
from jupyter_modelhub.serving.outcomes import FEEDBACK_FOLDER, FeedbackLog
from jupyter_modelhub.serving.predlog import PredictionLog

NS = "ml"
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
SERVICES = kmock.resource("", "v1", "services")
HPAS = kmock.resource("autoscaling", "v2", "horizontalpodautoscalers")
PODS = kmock.resource("", "v1", "pods")


class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator plus what the API server does that the tests rely on:
    ``metadata.generation`` counts the changes of a Deployment, and the pod proxy
    (``/api/v1/namespaces/NS/pods/POD:PORT/proxy/metrics``) answers with what ``metrics``
    (a test's function of the pod's name) says the pod's server would."""

    metrics: Callable[[str], str] | None = None
    scraped: list[str]

    async def _handle(self, request: Any) -> Any:
        if request.resource == PODS and (request.subresource or "").startswith("proxy"):
            pod, _, port = (request.name or "").partition(":")
            if request.subresource != "proxy/metrics" or port != str(CONTAINER_PORT):
                return aiohttp.web.Response(status=503, text="no endpoints available")
            if (PODS, request.namespace, pod) not in self.objects or self.metrics is None:
                return aiohttp.web.Response(status=404, text=f"pods {pod!r} not found")
            self.__dict__.setdefault("scraped", []).append(pod)
            return aiohttp.web.Response(text=self.metrics(pod), content_type="text/plain")
        if request.resource == DEPLOYMENTS and isinstance(request.data, dict):
            if request.action == enums.action.CREATE:
                request.data.setdefault("metadata", {})["generation"] = 1
            elif request.action == enums.action.UPDATE and request.name:
                key = (DEPLOYMENTS, request.namespace, request.name)
                if key in self.objects and not self.objects[key].deleted:
                    generation = self.objects[key].raw["metadata"].get("generation", 0)
                    self.objects[key].patch({"metadata": {"generation": generation + 1}})
        return await super()._handle(request)


class Cluster:
    """Plays the Deployment controller and the kubelet: for each new generation of a
    Deployment, makes pods of its template, ready (``mode="ready"``) or failing
    (``crash``/``pull``), or does nothing at all (``idle``)."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.mode = "ready"
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Cluster:
        self.server.resources["v1/pods"] = {}
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    def objects(self, resource: Any) -> dict[str, dict[str, Any]]:
        return {
            name: obj.raw
            for (res, ns, name), obj in list(self.server.objects.items())
            if res == resource and ns == NS and not obj.deleted
        }

    async def _run(self) -> None:
        while True:
            for name, deployment in self.objects(DEPLOYMENTS).items():
                generation = deployment["metadata"].get("generation", 0)
                if (deployment.get("status") or {}).get("observedGeneration") != generation:
                    self._roll(name, deployment, generation)
            await asyncio.sleep(0.01)

    def _roll(self, name: str, deployment: dict[str, Any], generation: int) -> None:
        if self.mode == "idle":
            return
        template = deployment["spec"]["template"]
        labels = {TEMPLATE_LABEL: "handmade", **template["metadata"]["labels"]}
        wanted = deployment["spec"].get("replicas", 1)
        old = [p for p, raw in self.objects(PODS).items() if p.startswith(f"{name}-")]
        if self.mode == "ready":
            for pod in old:
                self.server.objects[PODS, NS, pod].delete()
            for i in range(wanted):
                self._pod(f"{name}-{labels[TEMPLATE_LABEL]}-{i}", labels, ready=True)
            status = {
                "observedGeneration": generation,
                "replicas": wanted,
                "updatedReplicas": wanted,
                "readyReplicas": wanted,
                "availableReplicas": wanted,
            }
        else:  # one new pod that cannot run; the old ones keep serving
            self._pod(f"{name}-{labels[TEMPLATE_LABEL]}-0", labels, ready=False)
            status = {
                "observedGeneration": generation,
                "replicas": len(old) + 1,
                "updatedReplicas": 1,
                "readyReplicas": len(old),
                "availableReplicas": len(old),
            }
        self.server.objects[DEPLOYMENTS, NS, name].patch({"status": status})

    def _pod(self, pod: str, labels: dict[str, str], ready: bool) -> None:
        server_status: dict[str, Any] = {
            "name": "server",
            "ready": ready,
            "restartCount": 0,
            "image": "modelhub:test",
            "imageID": "",
            "state": {"running": {"startedAt": "2026-11-22T10:00:00Z"}},
        }
        if self.mode == "crash":
            server_status["restartCount"] = 4
            server_status["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 1m20s restarting failed container=server",
                }
            }
            server_status["lastState"] = {
                "terminated": {
                    "exitCode": 3,
                    "reason": "Error",
                    "message": "MODELHUB-FAILED fraud@v0.0.9: IntegrityError: md5 mismatch",
                }
            }
        elif self.mode == "pull":
            server_status["state"] = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": 'Back-off pulling image "nope/modelhub:404"',
                }
            }
        self.server.objects[PODS, NS, pod] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "namespace": NS, "labels": dict(labels)},
            "status": {
                "phase": "Running" if ready else "Pending",
                "startTime": "2026-11-22T10:00:00Z",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [server_status],
            },
        }


def spec(version: str = "v0.0.1", **changes: Any) -> DeploymentSpec:
    return DeploymentSpec(
        name="fraud",
        model="fraud",
        ref=f"fraud@{version}",
        version=version,
        target="kubernetes",
        replicas=2,
        port=8080,
        target_options=image_options(),
    ).replace(**changes)


def image_options(**changes: Any) -> dict[str, Any]:
    return {"namespace": NS, "source": "image", "image": "modelhub:test", **changes}


@pytest.fixture
def api_factory(kmock: ApiServer):
    url = str(kmock.url).rstrip("/")
    return lambda options: client.ApiClient(client.Configuration(host=url))


@pytest.fixture
def k8s(hub, api_factory) -> KubernetesBackend:
    k8s = KubernetesBackend(hub.registry, client_factory=api_factory)
    k8s.poll_interval = 0.01
    # ``logs`` and ``delete`` take a name: they find its options in its committed spec
    DeploymentStore(hub.registry).save(spec(), "Deploy fraud")
    return k8s


def args_of(deployment: dict[str, Any]) -> list[str]:
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


pytestmark = pytest.mark.kmock(cls=ApiServer)


@pytest.mark.asyncio
async def test_create_update_rollback_delete(kmock, k8s):
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(k8s.apply, spec("v0.0.1"), 10)
        deployment = cluster.objects(DEPLOYMENTS)["fraud"]
        assert args_of(deployment)[0] == "fraud@v0.0.1"
        assert deployment["spec"]["replicas"] == 2
        assert set(cluster.objects(SERVICES)) == {"fraud"}
        status = await asyncio.to_thread(k8s.status, spec("v0.0.1"), 1)
        assert (status.phase, status.serving_version, status.ready_replicas) == (
            "running",
            "v0.0.1",
            2,
        )
        assert status.endpoint == "http://fraud.ml.svc:80"

        # update: a patch of the same objects, a new generation, a rollout
        await asyncio.to_thread(k8s.apply, spec("v0.0.2", replicas=3), 10)
        deployment = cluster.objects(DEPLOYMENTS)["fraud"]
        assert deployment["metadata"]["generation"] == 2
        assert args_of(deployment)[0] == "fraud@v0.0.2"
        assert deployment["spec"]["replicas"] == 3
        status = await asyncio.to_thread(k8s.status, spec("v0.0.2", replicas=3), 2)
        assert {r.version for r in status.replicas} == {"v0.0.2"}
        assert len(status.replicas) == 3

        # rollback: the earlier spec, applied again
        await asyncio.to_thread(k8s.rollback, spec("v0.0.1"), 10)
        deployment = cluster.objects(DEPLOYMENTS)["fraud"]
        assert args_of(deployment)[0] == "fraud@v0.0.1"
        assert deployment["metadata"]["generation"] == 3

        # delete is idempotent: the second one finds nothing (404s) and says so
        assert await asyncio.to_thread(k8s.delete, "fraud") is True
        assert cluster.objects(DEPLOYMENTS) == {} and cluster.objects(SERVICES) == {}
        assert await asyncio.to_thread(k8s.delete, "fraud") is False
        status = await asyncio.to_thread(k8s.status, spec("v0.0.1"), 3)
        assert status.phase == "stopped" and status.replicas == ()


@pytest.mark.asyncio
async def test_objects_that_exist_already_are_patched(kmock, k8s):
    """A 409 on create (objects left by an earlier run, or made by hand) becomes a patch."""
    stale = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fraud", "namespace": NS, "generation": 7},
        "spec": {"replicas": 9, "template": {"metadata": {"labels": {}}, "spec": {}}},
    }
    kmock.objects[DEPLOYMENTS, NS, "fraud"] = stale
    kmock.objects[SERVICES, NS, "fraud"] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fraud", "namespace": NS},
        "spec": {"ports": [{"port": 1234}]},
    }
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(k8s.apply, spec(), 10)
        deployment = cluster.objects(DEPLOYMENTS)["fraud"]
        assert deployment["metadata"]["generation"] == 8
        assert deployment["spec"]["replicas"] == 2
        assert args_of(deployment)[0] == "fraud@v0.0.1"
        assert cluster.objects(SERVICES)["fraud"]["spec"]["ports"][0]["port"] == 80
    creates = [r for r in kmock if r.action == enums.action.CREATE]
    patches = [r for r in kmock if r.action == enums.action.UPDATE]
    assert len(creates) == 2 and len(patches) == 2  # both objects: 409, then patched


@pytest.mark.asyncio
async def test_the_autoscaler_comes_and_goes_with_its_option(kmock, k8s):
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(k8s.apply, spec(target_options=image_options(hpa_max=5)), 10)
        hpa = cluster.objects(HPAS)["fraud"]
        assert hpa["spec"]["maxReplicas"] == 5
        assert "replicas" not in cluster.objects(DEPLOYMENTS)["fraud"]["spec"]
        await asyncio.to_thread(k8s.apply, spec(), 10)
        assert cluster.objects(HPAS) == {}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "reason", "words"),
    [
        ("crash", "CrashLoopBackOff", "MODELHUB-FAILED fraud@v0.0.9: IntegrityError"),
        ("pull", "ImagePullBackOff", 'Back-off pulling image "nope/modelhub:404"'),
    ],
)
async def test_a_failed_rollout_says_why_and_the_old_pods_serve(kmock, k8s, mode, reason, words):
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(k8s.apply, spec("v0.0.1"), 10)
        cluster.mode = mode
        with pytest.raises(BackendError) as info:
            await asyncio.to_thread(k8s.apply, spec("v0.0.9"), 10)
        message = str(info.value)
        assert "fraud@v0.0.9" in message and reason in message and words in message
        assert "rollback" in message
        status = await asyncio.to_thread(k8s.status, spec("v0.0.9"), 2)
        assert status.phase == "degraded"  # the two old pods still answer
        assert status.serving_version == "v0.0.1"
        assert reason in (status.last_error or "")
        failing = [r for r in status.replicas if r.health != "ready"]
        assert [r.state for r in failing] == [reason]


@pytest.mark.asyncio
async def test_a_rollout_that_never_progresses_times_out(kmock, k8s):
    async with Cluster(kmock) as cluster:
        cluster.mode = "idle"
        with pytest.raises(BackendError, match="not ready after"):
            await asyncio.to_thread(k8s.apply, spec(), 0.2)


@pytest.mark.asyncio
async def test_logs_of_every_pod(kmock, k8s):
    async with Cluster(kmock):
        await asyncio.to_thread(k8s.apply, spec(replicas=1), 10)
        (pod,) = [name for (res, _, name) in kmock.objects if res == PODS]
        kmock[f"get /api/v1/namespaces/{NS}/pods/{pod}/log"] << b"loaded fraud@v0.0.1\nready\n"
        lines = await asyncio.to_thread(k8s.logs, "fraud", 10)
    assert lines == [f"[{pod}] loaded fraud@v0.0.1", f"[{pod}] ready"]
    assert (await asyncio.to_thread(k8s.logs, "fraud", 1)) == [f"[{pod}] ready"]


def traffic(kind: str) -> TrafficPolicy:
    zero = {"challenger": 0.0, "champion": 1.0}
    return TrafficPolicy(
        kind=kind,
        experiment="exp-1",
        challengers={"challenger": "v0.0.2"},
        weights=zero if kind in ("shadow", "bluegreen") else {"challenger": 0.1, "champion": 0.9},
        steps=(0.1, 1.0) if kind == "canary" else (),
    )


@pytest.mark.asyncio
async def test_a_bluegreen_is_refused_before_any_call_saying_why(kmock, k8s):
    with pytest.raises(InvalidArgument, match="cannot run a bluegreen experiment") as info:
        await asyncio.to_thread(k8s.apply, spec(traffic=traffic("bluegreen")), 10)
    assert list(kmock) == []
    text = str(info.value) + (info.value.hint or "")
    assert "all traffic at once" in text and "rolling update" in text
    assert "Targets that can: docker, local" in text


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["split", "canary"])
async def test_a_split_or_canary_is_accepted_and_its_pods_carry_the_policy(kmock, k8s, kind):
    wanted = spec(traffic=traffic(kind))
    DeploymentStore(k8s.registry).save(wanted, f"Start {kind}")
    runtime = RuntimeFolder(k8s.registry.root, "fraud")
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(k8s.apply, wanted, 10)
        args = args_of(cluster.objects(DEPLOYMENTS)["fraud"])
        # its controller runs on this machine, and the status says so
        status = await asyncio.to_thread(k8s.status, wanted, 1)
        assert status.controller == f"running (pid {watch.controller_pid(runtime)})"
        assert await asyncio.to_thread(k8s.delete, "fraud") is True
        assert watch.controller_pid(runtime) is None
    policy = json.loads(args[args.index("--traffic") + 1])
    assert policy["kind"] == kind and policy["challengers"] == {"challenger": "v0.0.2"}
    assert policy["weights"] == {"challenger": 0.1, "champion": 0.9}


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` (in a thread: it may call the sync client) until it returns something
    truthy, keeping kmock's loop running; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


# -- through the hub: deploy, update, rollback, stop (its git history is the revision list) --------
@pytest.fixture
def k8s_hub(hub, classifier, api_factory, monkeypatch):
    hub.register(classifier, "fraud")
    hub.register(classifier, "fraud")
    monkeypatch.setattr(backend, "connect", api_factory)
    monkeypatch.setattr(KubernetesBackend, "poll_interval", 0.01)
    return hub


@pytest.mark.asyncio
async def test_the_hub_deploys_updates_rolls_back_and_stops(kmock, k8s_hub):
    hub = k8s_hub
    async with Cluster(kmock) as cluster:
        status = await asyncio.to_thread(
            lambda: hub.deploy(
                "fraud@v0.0.1", target="kubernetes", replicas=2, target_options=image_options()
            )
        )
        assert (status.target, status.phase, status.serving_version) == (
            "kubernetes",
            "running",
            "v0.0.1",
        )
        with pytest.raises(InvalidArgument, match="already exists"):
            await asyncio.to_thread(
                lambda: hub.deploy("fraud", target="kubernetes", target_options=image_options())
            )
        await asyncio.to_thread(hub.update, "fraud", "v0.0.2")
        assert args_of(cluster.objects(DEPLOYMENTS)["fraud"])[0] == "fraud@v0.0.2"
        status = await asyncio.to_thread(hub.rollback, "fraud")
        assert args_of(cluster.objects(DEPLOYMENTS)["fraud"])[0] == "fraud@v0.0.1"
        assert (status.revision, status.serving_version) == (3, "v0.0.1")
        assert [r.version for r in hub.revisions("fraud")] == ["v0.0.1", "v0.0.2", "v0.0.1"]
        # the options were committed with every revision (names only): the rollback has them
        assert [r.spec.target_options for r in hub.revisions("fraud")] == [image_options()] * 3
        assert status.endpoint == f"http://fraud.{NS}.svc:80"
        committed = (hub.path / "deployments" / "fraud.yaml").read_text()
        assert "target_options:" in committed and f"namespace: {NS}" in committed
        assert await asyncio.to_thread(hub.stop, "fraud") is True
        assert cluster.objects(DEPLOYMENTS) == {}
        assert await asyncio.to_thread(hub.stop, "fraud") is False
    # nothing was kept per machine
    tracked = hub.registry.git.run("ls-files")
    assert ".modelhub" not in tracked
    assert not (hub.path / ".modelhub" / "targets").exists()
    with pytest.raises(InvalidArgument, match="takes no target options"):
        hub.deploy("fraud", target="local", target_options={"namespace": "x"})


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"namespace": "ml", "replicaz": 3}, r"Unknown Kubernetes option\(s\): replicaz.*hpa_max"),
        ({"hpa_max": "many"}, "hpa_max must be an integer"),
        ({"token": "abc"}, "looks like a credential"),
        ({"hub_url": "https://bob:hunter2@git.example.org/hub.git"}, "looks like a credential"),
        ({"image": "ghp_abcdefghijklmnopqrstuvwxyz0123"}, "looks like a credential"),
    ],
)
def test_bad_or_secret_options_are_refused_before_anything_is_recorded(
    k8s_hub, given, words
) -> None:
    with pytest.raises(InvalidArgument, match=words):
        k8s_hub.deploy("fraud@v0.0.1", target="kubernetes", target_options=given)
    assert k8s_hub.deployments() == []
    # a Secret's name is fine: the keys stay in the cluster
    assert KubernetesOptions.check({"secret": "dvc-remote", "hpa_max": 3}) == {
        "hpa_max": 3,
        "secret": "dvc-remote",
    }


@pytest.mark.asyncio
async def test_a_deployment_made_before_specs_carried_options_still_finds_them(kmock, k8s):
    """Its per-machine file (``.modelhub/targets/kubernetes/NAME.yaml``) is read while its
    spec has none, and removed when it stops."""
    k8s.options_store.save("fraud", KubernetesOptions.from_dict(image_options()))
    old = spec(target_options={})
    DeploymentStore(k8s.registry).save(old, "Deploy fraud (as an older version wrote it)")
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(k8s.apply, old, 10)
        assert set(cluster.objects(DEPLOYMENTS)) == {"fraud"}  # in namespace NS, image source
        status = await asyncio.to_thread(k8s.status, old, 1)
        assert status.endpoint == f"http://fraud.{NS}.svc:80" and status.phase == "running"
        assert await asyncio.to_thread(k8s.delete, "fraud") is True
    assert not k8s.options_store.path("fraud").exists()


# -- experiments: the controller on this machine, scraping the pods through the API server -------
def prometheus(pod: str, n: int, challenger_errors: float) -> str:
    """What a pod's ``/metrics`` says after its ``n``-th scrape (written by prometheus_client,
    as the model server's is): both variants keep answering, a ``challenger_errors`` share of
    the challenger's answers are 5xx."""
    registry = CollectorRegistry()
    requests = Counter(
        "modelhub_requests",
        "answers",
        ("deployment", "variant", "endpoint", "code"),
        registry=registry,
    )
    for variant, total in (("champion", 90 * n), ("challenger", 10 * n)):
        failed = int(total * challenger_errors) if variant == "challenger" else 0
        requests.labels("fraud", variant, "v2_infer", "2xx").inc(total - failed)
        requests.labels("fraud", variant, "v2_infer", "5xx").inc(failed)
    return generate_latest(registry).decode()


@pytest.fixture
def experiment_hub(k8s_hub, kmock, tmp_path, monkeypatch):
    """``k8s_hub`` whose detached controller reaches kmock with a kubeconfig (as a user's
    would reach their cluster), checking every 0.1 s."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "me", "user": {}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "me"}}],
        "current-context": "kmock",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("MODELHUB_CONTROLLER_INTERVAL", "0.1")
    yield k8s_hub
    watch.stop(k8s_hub.path, "fraud")  # whatever a failed test left running


@pytest.mark.asyncio
async def test_a_canary_that_breaks_its_error_guardrail_is_rolled_back(kmock, experiment_hub):
    hub = experiment_hub
    scrapes: dict[str, int] = {}

    def failing_challenger(pod: str) -> str:
        scrapes[pod] = scrapes.get(pod, 0) + 1
        return prometheus(pod, scrapes[pod], challenger_errors=0.5)

    kmock.metrics = failing_challenger
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(
            lambda: hub.deploy("fraud@v0.0.1", target="kubernetes", target_options=image_options())
        )
        status = await asyncio.to_thread(
            lambda: hub.ab_start(
                "fraud",
                "v0.0.2",
                kind="canary",
                steps="10,50,100",
                dwell_seconds=60,
                guardrails={"max_error_rate": 0.05, "min_requests": 20},
            )
        )
        assert (status.controller or "").startswith("running (pid ")
        assert "--traffic" in args_of(cluster.objects(DEPLOYMENTS)["fraud"])

        def rolled_back() -> Any:
            policy = hub.revisions("fraud")[-1].spec.traffic
            return policy if policy is not None and policy.state == "rolled_back" else None

        policy = await until(rolled_back, 30, "the controller to roll the canary back")
        assert "guardrail breached" in policy.reason and "error rate" in policy.reason
        assert hub.revisions("fraud")[-1].message.startswith("Roll back canary")

        # the rollback was applied: a pod template without the challenger, rolled out
        def champion_only() -> bool:
            args = args_of(cluster.objects(DEPLOYMENTS)["fraud"])
            return "--traffic" not in args and "v0.0.2" not in json.dumps(args)

        await until(champion_only, 30, "the Deployment patched back to the champion alone")
        runtime = RuntimeFolder(hub.path, "fraud")
        await until(lambda: watch.controller_pid(runtime) is None, 10, "the controller to exit")
        after = await asyncio.to_thread(hub.deployment, "fraud")
        assert after.controller is None and after.traffic is not None
        assert after.traffic.state == "rolled_back"
        logs = (runtime.log_file).read_text()
        assert "[controller] canary" in logs and "rolling back" in logs
        assert await asyncio.to_thread(hub.stop, "fraud") is True


@pytest.mark.asyncio
async def test_a_healthy_canary_advances_and_a_dead_controller_is_reported_and_resumed(
    kmock, experiment_hub
):
    hub = experiment_hub
    scrapes: dict[str, int] = {}

    def healthy(pod: str) -> str:
        scrapes[pod] = scrapes.get(pod, 0) + 1
        return prometheus(pod, scrapes[pod], challenger_errors=0.0)

    kmock.metrics = healthy
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(
            lambda: hub.deploy(
                "fraud@v0.0.1", target="kubernetes", replicas=2, target_options=image_options()
            )
        )
        await asyncio.to_thread(
            lambda: hub.ab_start(
                "fraud",
                "v0.0.2",
                kind="canary",
                steps="20,50,100",
                dwell_seconds=1,
                guardrails={"min_requests": 10},
            )
        )

        def advanced() -> Any:
            policy = hub.revisions("fraud")[-1].spec.traffic
            return policy if policy is not None and policy.step >= 1 else None

        policy = await until(advanced, 30, "the controller to advance the canary")
        assert policy.running and policy.weights["challenger"] in (0.5, 1.0)
        messages = [r.message for r in hub.revisions("fraud")]
        assert any(m.startswith("Advance canary") and "to 50%" in m for m in messages), messages

        # it read the pods through the API server's pod proxy, both replicas of the template
        def rolled_out_step() -> int:
            args = args_of(cluster.objects(DEPLOYMENTS)["fraud"])
            return int(json.loads(args[args.index("--traffic") + 1])["step"])

        # at its last step it stays (until promoted): rolled out, nothing more to do
        await until(lambda: rolled_out_step() == 2, 30, "the last step to reach the pods")
        assert any("to 100%" in r.message for r in hub.revisions("fraud"))
        assert len({pod for pod in kmock.scraped if pod.endswith(("-0", "-1"))}) >= 2

        # a controller that died (this machine rebooted, say) is reported; sync restarts it
        runtime = RuntimeFolder(hub.path, "fraud")
        pid = watch.controller_pid(runtime)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(lambda: watch.controller_pid(runtime) is None, 10, "the controller to die")
        status = await asyncio.to_thread(hub.deployment, "fraud")
        assert status.controller == "not running" and status.phase == "running"
        assert "experiment controller is not running" in (status.last_error or "")
        assert [s.name for s in await asyncio.to_thread(hub.sync_deployments)] == ["fraud"]
        status = await asyncio.to_thread(hub.deployment, "fraud")
        assert (status.controller or "").startswith("running (pid ")

        # stopping the deployment stops its controller
        assert await asyncio.to_thread(hub.stop, "fraud") is True
        assert watch.controller_pid(runtime) is None
        assert cluster.objects(DEPLOYMENTS) == {}


# -- the pods' prediction and outcome logs, copied here for the reports -------------------------
class Pods:
    """Each pod's log folder (``PREDICTIONS_DIR``) as a folder here, and the exec that runs
    the backend's command in it with this machine's sh, tar and base64 (``broken`` pods'
    exec fails, as on a pod whose image has no tar)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.broken: set[str] = set()
        self.calls: list[str] = []

    def folder(self, pod: str) -> Path:
        return self.root / pod

    def exec(self, core: Any, namespace: str, pod: str, command: list[str]) -> str:
        self.calls.append(pod)
        assert namespace == NS and command[:2] == ["sh", "-c"]
        if pod in self.broken:
            raise RuntimeError("sh: 1: tar: not found")
        folder = self.folder(pod)
        folder.mkdir(parents=True, exist_ok=True)
        script = command[2].replace(PREDICTIONS_DIR, str(folder))
        return subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, check=True
        ).stdout

    def write(self, pod: str, variant: str, outcomes: dict[str, float]) -> None:
        """What pod ``pod``'s server logs when ``variant`` answers these requests and their
        outcomes are posted back (one chunk of each)."""
        schema = FeatureSchema.build([FeatureSpec("amount", "float64")], "ndarray")
        folder = self.folder(pod)
        predictions = PredictionLog(
            folder, schema, model="fraud", version="v0.0.1", variant=variant
        )
        for rid in outcomes:
            predictions.record(rid, FeatureBatch(np.array([[1.0]]), None), np.array([0]))
        predictions.close()
        feedback = FeedbackLog(folder / FEEDBACK_FOLDER)
        feedback.record([(rid, None, outcome) for rid, outcome in outcomes.items()])
        feedback.close()


def chunks(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet"))


@pytest.mark.asyncio
async def test_the_logs_of_every_running_pod_are_copied_once(kmock, k8s, tmp_path, caplog):
    pods = Pods(tmp_path / "pods")
    k8s.pod_exec = pods.exec
    here = RuntimeFolder(k8s.registry.root, "fraud").predictions
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(k8s.apply, spec(), 10)
        first, second = sorted(cluster.objects(PODS))
        pods.write(first, "champion", {"a1": 1.0, "a2": 0.0})
        pods.write(second, "champion", {"b1": 1.0})
        assert await asyncio.to_thread(k8s.collect_logs, spec()) == 4
        copied = chunks(here)
        assert len(copied) == 4
        for pod in (first, second):
            mine = [c for c in copied if c.endswith(f".{pod}.parquet")]
            assert len(mine) == 2 and sum(c.startswith("feedback/") for c in mine) == 1
        # again: nothing new, nothing copied; then only what is new
        assert await asyncio.to_thread(k8s.collect_logs, spec()) == 0
        pods.write(second, "champion", {"b2": 0.0})
        assert await asyncio.to_thread(k8s.collect_logs, spec()) == 2
        assert len(chunks(here)) == 6
        # a pod that cannot be read is skipped with a warning; the others are still copied
        pods.write(second, "champion", {"b3": 1.0})
        pods.broken.add(first)
        with caplog.at_level("WARNING"):
            assert await asyncio.to_thread(k8s.collect_logs, spec()) == 2
        assert f"pod {first} of deployment fraud: RuntimeError: sh: 1: tar: not found" in (
            caplog.text
        )
        assert "Traceback" not in caplog.text
        # a pod that does not run is not asked
        pods.calls.clear()
        kmock.objects[PODS, NS, first].patch({"status": {"phase": "Pending"}})
        await asyncio.to_thread(k8s.collect_logs, spec())
        assert pods.calls == [second]
        assert await asyncio.to_thread(k8s.delete, "fraud") is True


@pytest.mark.asyncio
async def test_the_ab_report_and_quality_read_the_pods_logs(
    kmock, experiment_hub, tmp_path, monkeypatch
):
    hub = experiment_hub
    pods = Pods(tmp_path / "pods")
    monkeypatch.setattr(podlogs, "exec_in_pod", pods.exec)
    kmock.metrics = lambda pod: prometheus(pod, 1, challenger_errors=0.0)
    async with Cluster(kmock) as cluster:
        await asyncio.to_thread(
            lambda: hub.deploy(
                "fraud@v0.0.1", target="kubernetes", replicas=2, target_options=image_options()
            )
        )
        await asyncio.to_thread(lambda: hub.ab_start("fraud", "v0.0.2", split="50/50"))
        first, second = sorted(cluster.objects(PODS))
        pods.write(first, "champion", {f"c{i}": float(i % 2) for i in range(40)})
        pods.write(second, "challenger", {f"d{i}": float(i % 4 != 0) for i in range(30)})

        report = await asyncio.to_thread(lambda: hub.ab_report("fraud", min_samples=10))
        assert report.requests == {"champion": 40, "challenger": 30}
        assert report.outcomes == {"champion": 40, "challenger": 30}
        timeline = await asyncio.to_thread(lambda: hub.quality("fraud", step="1h"))
        assert {p.variant: p.n for p in timeline.points} == {"champion": 40, "challenger": 30}
        assert await asyncio.to_thread(hub.stop, "fraud") is True
