"""Rollout and status parsing on recorded status objects (``kubectl get -o json`` shapes, from
the API reference's examples): a healthy rollout, a new pod in CrashLoopBackOff while the old
ones serve, and a first deployment whose image cannot be pulled."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jupyter_modelhub.deploy.kubernetes.status import (
    deployment_status,
    pod_problem,
    replica,
    rollout,
)
from jupyter_modelhub.deploy.spec import DeploymentSpec

DATA = Path(__file__).parent / "data" / "kubernetes"


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def spec(version: str) -> DeploymentSpec:
    return DeploymentSpec(
        name="fraud", model="fraud", ref=f"fraud@{version}", version=version, replicas=3
    )


def status_of(name: str, version: str):
    data = recorded(name)
    return deployment_status(
        spec(version),
        endpoint="http://fraud.ml.svc:80",
        revision=4,
        deployment=data["deployment"],
        pods=data["pods"],
    )


def test_a_healthy_rollout():
    data = recorded("healthy-rollout")
    state = rollout(data["deployment"], data["pods"], generation=4)
    assert state.progress == "done"
    status = status_of("healthy-rollout", "v0.0.2")
    assert (status.phase, status.serving_version, status.last_error) == ("running", "v0.0.2", None)
    assert [r.health for r in status.replicas] == ["ready"] * 3
    assert [r.restarts for r in status.replicas] == [0, 1, 0]
    assert {r.state for r in status.replicas} == {"Running"}
    # a newer generation than the controller has seen is still under way
    assert rollout(data["deployment"], data["pods"], generation=5).progress == "progressing"


def test_a_crash_looping_pod_fails_the_rollout_with_the_servers_words():
    data = recorded("crashloop-rollout")
    state = rollout(data["deployment"], data["pods"], generation=5)
    assert state.progress == "failed"
    assert "pod fraud-5c7f9d6b8-kx2lp: container server: CrashLoopBackOff" in state.message
    # the last line the server wrote, from the termination message
    assert "exit code 3: MODELHUB-FAILED fraud@v0.0.3" in state.message
    status = status_of("crashloop-rollout", "v0.0.3")
    assert status.phase == "degraded"  # the three pods of the old template still serve
    assert status.serving_version == "v0.0.2"
    assert status.ready_replicas == 3
    failing = [r for r in status.replicas if r.health != "ready"]
    assert [(r.version, r.state, r.restarts) for r in failing] == [
        ("v0.0.3", "CrashLoopBackOff", 5)
    ]


def test_an_image_that_cannot_be_pulled_fails_a_first_deployment():
    data = recorded("imagepull-first-deploy")
    state = rollout(data["deployment"], data["pods"], generation=1)
    assert state.progress == "failed"
    assert "ImagePullBackOff" in state.message
    assert "registry.example.org/modelhub:9.9" in state.message
    status = status_of("imagepull-first-deploy", "v0.0.2")
    assert (status.phase, status.serving_version) == ("failed", None)


def test_failures_of_old_pods_do_not_fail_a_new_rollout():
    data = recorded("crashloop-rollout")
    for pod in data["pods"]:  # the crash-looping pod now belongs to an older template
        if pod["status"]["containerStatuses"][0]["state"].get("waiting"):
            pod["metadata"]["labels"]["modelhub.jupyter.org/template"] = "0ld0ld0ld0ld0ld0"
    assert rollout(data["deployment"], data["pods"], generation=5).progress == "progressing"


def test_a_deadline_exceeded_without_pods_says_so():
    data = recorded("imagepull-first-deploy")
    state = rollout(data["deployment"], [], generation=1)
    assert state.progress == "failed"
    assert state.message.startswith("ProgressDeadlineExceeded")


@pytest.mark.parametrize(
    ("waiting", "expected"),
    [
        ({"reason": "ContainerCreating"}, None),
        ({"reason": "ErrImagePull", "message": "timeout"}, None),  # retried: not yet a failure
        ({"reason": "CreateContainerConfigError", "message": 'secret "dvc" not found'}, "dvc"),
    ],
)
def test_which_waiting_reasons_are_failures(waiting, expected):
    pod = recorded("healthy-rollout")["pods"][0]
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": waiting}
    problem = pod_problem(pod)
    assert (problem is None) if expected is None else (expected in problem)


def test_a_failed_init_container_is_reported():
    pod = recorded("healthy-rollout")["pods"][0]
    pod["status"]["initContainerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 1, "reason": "Error", "message": "fatal: repository not found"}
    }
    assert pod_problem(pod) == (
        "pod fraud-7d4b9c8f6d-2xkqp: container fetch-model: Error: exit code 1: "
        "fatal: repository not found"
    )


def test_uptime_from_the_start_time():
    pod = recorded("healthy-rollout")["pods"][0]
    now = datetime(2026, 11, 22, 10, 1, 3, tzinfo=timezone.utc)
    assert replica(0, pod, now).uptime_s == 60.0
