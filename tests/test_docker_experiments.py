"""Splits and canaries on the docker target, against a real Docker engine: the containers
route in-process with ``--traffic`` and a detached experiment controller (``deploy.watch``)
judges the guardrails and takes the canary's steps through the ``Experiments`` verbs.

The engine and the base image come from ``test_docker_deploy``'s fixtures (they skip, saying
why, where no engine runs). Every wait polls a condition against a deadline.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

docker = pytest.importorskip("docker")

from test_deploy import wait_for  # noqa: E402
from test_docker_deploy import base_image, docker_client, labelled  # noqa: E402, F401
from test_experiments_deploy import post_feedback, send, send_counting  # noqa: E402

from jupyter_modelhub import Hub  # noqa: E402
from jupyter_modelhub.deploy import watch  # noqa: E402
from jupyter_modelhub.deploy.runtime import RuntimeFolder  # noqa: E402

pytestmark = pytest.mark.slow
NAMES = ("ab", "canary-bad", "canary-good")


class Evaluated:
    """A function that pickles as its source (``eval`` of a lambda), so that a container,
    which cannot import the tests' modules (``flaky_models``), can load it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.function = eval(source, {})

    def __call__(self, X):
        return self.function(X)

    def __reduce__(self):
        return (eval, (self.source, {}))


#: what ``flaky_models.FailsOnRealInput`` does: a zero row passes (the server's self-test),
#: any other raises (a 500: a bug of the model, not of the request)
FAILS_ON_REAL_INPUT = (
    "lambda X: X if not (X != 0).any() else "
    "(_ for _ in ()).throw(RuntimeError('this model is broken'))"
)


def failing_model(X: np.ndarray, y: np.ndarray):
    """Loads in a container and passes its self-test; answers 500 to every real row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    check = FunctionTransformer(Evaluated(FAILS_ON_REAL_INPUT)).fit(np.zeros((1, 4)))
    return make_pipeline(check, LogisticRegression().fit(X, y))


@pytest.fixture(scope="module")
def experiment_hub(tmp_path_factory: pytest.TempPathFactory, base_image) -> Iterator[Hub]:  # noqa: F811
    """fraud v0.0.1, v0.0.2 (the opposite labels) and v0.0.3 (fails on real input)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)
    hub = Hub.init(tmp_path_factory.mktemp("docker-experiments") / "hub")
    hub.register(LogisticRegression().fit(X, y), "fraud", sample=X)
    hub.register(LogisticRegression().fit(X, 1 - y), "fraud", sample=X)
    hub.register(failing_model(X, y), "fraud", sample=np.zeros((5, 4)))  # v0.0.3
    yield hub
    for name in NAMES:
        try:
            hub.stop(name)
        except Exception as exc:  # the test itself reports what went wrong
            print(f"cleanup of {name}: {exc}")


@pytest.fixture(autouse=True)
def fast_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELHUB_CONTROLLER_INTERVAL", "0.2")


def controller_pid(hub: Hub, name: str) -> int | None:
    return watch.controller_pid(RuntimeFolder(hub.path, name))


def test_a_split_serves_both_variants_and_the_report_sees_them(
    experiment_hub: Hub,
    docker_client,  # noqa: F811
) -> None:
    hub = experiment_hub
    hub.deploy("fraud@v0.0.1", "ab", target="docker", server={"log_flush_seconds": 0.2})
    status = hub.ab_start("ab", "v0.0.2", kind="split", split="50/50")
    assert status.phase == "running" and status.traffic is not None and status.traffic.running
    assert (status.controller or "").startswith("running (pid ")
    (container,) = labelled(docker_client, "ab")
    assert "--traffic" in container.attrs["Args"]

    answers = send(status.endpoint, 300)
    variants = Counter(variant for _, variant, _ in answers)
    assert set(variants) == {"champion", "challenger"} and 90 < variants["challenger"] < 210
    assert all(
        version == {"champion": "v0.0.1", "challenger": "v0.0.2"}[variant]
        for _, variant, version in answers
    )
    items = [
        {"request_id": rid, "outcome": int(variant == "challenger" or i % 4 == 0)}
        for i, (rid, variant, _) in enumerate(answers)
    ]
    assert post_feedback(status.endpoint, items)["accepted"] == 300

    def reported():  # the logs are flushed a moment after the answers and the feedback
        report = hub.ab_report("ab")
        complete = report.requests == dict(variants) and sum(report.outcomes.values()) == 300
        if complete and report.report.comparison("challenger").status == "better":
            return report
        return None

    wait_for(reported, 30, "every request and outcome in the A/B report")

    # a controller that died is reported, and sync-deployments starts it again
    pid = controller_pid(hub, "ab")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: controller_pid(hub, "ab") is None, 10, "the controller to die")
    status = hub.deployment("ab")
    assert status.controller == "not running" and status.phase == "running"
    assert "experiment controller is not running" in (status.last_error or "")
    assert [s.name for s in hub.sync_deployments()] == ["ab"]
    assert (hub.deployment("ab").controller or "").startswith("running")
    assert hub.sync_deployments() == []  # nothing more to do

    # the experiment ends: the controller exits by itself
    status = hub.ab_stop("ab")
    wait_for(lambda: controller_pid(hub, "ab") is None, 10, "the controller to exit")
    assert hub.deployment("ab").controller is None
    assert {variant for _, variant, _ in send(status.endpoint, 10)} == {None}
    assert any(
        "[controller] exiting: no split or canary runs" in line
        for line in hub.deployment_logs("ab", tail=500)
    )
    assert hub.stop("ab") is True


def test_a_canary_that_breaks_its_error_guardrail_is_rolled_back(
    experiment_hub: Hub,
    docker_client,  # noqa: F811
) -> None:
    hub = experiment_hub
    hub.deploy("fraud@v0.0.1", "canary-bad", target="docker")
    status = hub.ab_start(
        "canary-bad",
        "v0.0.3",
        kind="canary",
        steps="10,50,100",
        dwell_seconds=60,
        guardrails={"max_error_rate": 0.05, "min_requests": 20},
    )
    assert (status.controller or "").startswith("running")
    seen: Counter = Counter()

    def rolled_back():
        seen.update(send_counting(status.endpoint, 40))
        policy = hub.revisions("canary-bad")[-1].spec.traffic  # committed, with its reason
        return policy if policy is not None and policy.state == "rolled_back" else None

    policy = wait_for(rolled_back, 60, "the controller to roll the canary back")
    assert "guardrail breached" in policy.reason and "error rate" in policy.reason
    assert seen[500] > 0, seen  # the challenger's share failed, the champion answered
    assert hub.revisions("canary-bad")[-1].message.startswith("Roll back canary")
    # the rollback rolled the containers: the champion answers everything
    wait_for(lambda: send_counting(status.endpoint, 20) == Counter({200: 20}), 60, "champion only")
    wait_for(lambda: controller_pid(hub, "canary-bad") is None, 10, "the controller to exit")
    after = hub.deployment("canary-bad")
    assert after.traffic is not None and after.traffic.state == "rolled_back"
    assert after.controller is None and after.phase == "running"
    versions = {c.labels["modelhub.version"] for c in labelled(docker_client, "canary-bad")}
    assert versions == {"v0.0.1"}
    assert hub.stop("canary-bad") is True


def test_a_healthy_canary_advances_a_step(
    experiment_hub: Hub,
    docker_client,  # noqa: F811
) -> None:
    hub = experiment_hub
    hub.deploy("fraud@v0.0.1", "canary-good", target="docker")
    status = hub.ab_start(
        "canary-good",
        "v0.0.2",
        kind="canary",
        steps="20,50,100",
        dwell_seconds=1,
        guardrails={"min_requests": 10},
    )

    def advanced():
        send_counting(status.endpoint, 20)
        policy = hub.revisions("canary-good")[-1].spec.traffic
        return policy if policy is not None and policy.step >= 1 else None

    policy = wait_for(advanced, 60, "the controller to advance the canary")
    assert policy.running and policy.weights["challenger"] in (0.5, 1.0)
    messages = [r.message for r in hub.revisions("canary-good")]
    assert any(m.startswith("Advance canary") and "to 50%" in m for m in messages), messages
    assert hub.stop("canary-good") is True
    wait_for(lambda: controller_pid(hub, "canary-good") is None, 10, "stop to end the controller")
