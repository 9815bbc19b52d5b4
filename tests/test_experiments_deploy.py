"""Experiments on local deployments, as a data scientist runs them from the Python API.

Real supervised replicas on 127.0.0.1; every test stops its deployments in teardown.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from urllib.parse import urlparse

import numpy as np
import pytest
import yaml
from test_deploy import register_two_versions, stop_every_deployment, use_model_server, wait_for

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import InvalidArgument

ROW = [0.5, -1.0, 0.25, 2.0]


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


@pytest.fixture
def deployed(hub: Hub, classifier, training_data):
    """fraud v0.0.1 (in prod) and v0.0.2 (the opposite labels); deployments stopped after."""
    yield register_two_versions(hub, classifier, training_data)
    stop_every_deployment(hub)


def send(endpoint: str, n: int, key_prefix: str | None = "user") -> list[tuple[str, str, str]]:
    """``n`` requests over one keep-alive connection: (request id, variant, model version)."""
    url = urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    )
    out = []
    try:
        for i in range(n):
            headers = {"Content-Type": "application/json"}
            if key_prefix is not None:
                headers["X-Modelhub-Key"] = f"{key_prefix}-{i}"
            conn.request("POST", "/v2/models/fraud/infer", body=body, headers=headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200, answer
            out.append(
                (
                    response.getheader("X-Request-Id"),
                    response.getheader("X-Modelhub-Variant"),
                    answer["model_version"],
                )
            )
    finally:
        conn.close()
    return out


def post_feedback(endpoint: str, items: list[dict]) -> dict:
    url = urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("POST", "/feedback", json.dumps(items), {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def test_an_ab_test_from_start_to_promotion(deployed: Hub) -> None:
    hub = deployed
    status = hub.deploy("fraud#prod", "fraud-svc", follow_stage=True)
    status = hub.ab_start("fraud-svc", "v0.0.2", split="70/30")
    assert status.traffic is not None and status.traffic.running
    assert status.phase == "running"
    answers = send(status.endpoint, 600)
    variants = Counter(v for _, v, _ in answers)
    assert set(variants) == {"champion", "challenger"} and 100 < variants["challenger"] < 260
    assert all(
        version == {"champion": "v0.0.1", "challenger": "v0.0.2"}[v] for _, v, version in answers
    )
    # the challenger converts more often (the outcomes a client posts back)
    items = [
        {"request_id": rid, "outcome": int(v == "challenger" or i % 5 == 0)}
        for i, (rid, v, _) in enumerate(answers)
    ]
    assert post_feedback(status.endpoint, items)["accepted"] == 600
    spec_file = hub.path / "deployments" / "fraud-svc.yaml"
    assert yaml.safe_load(spec_file.read_text())["traffic"]["kind"] == "split"

    def reported():
        # binary outcomes count a request without one as 0: wait for every request and for
        # every 1 posted (the prediction and outcome logs are flushed separately)
        report = hub.ab_report("fraud-svc")
        ones = sum(v.successes or 0 for v in report.report.variants)
        complete = sum(report.outcomes.values()) == 600
        return report if complete and ones == sum(item["outcome"] for item in items) else None

    report = wait_for(reported, 20, "outcomes in the report")
    quality = hub.quality("fraud-svc", step="1h")  # the same outcomes, per window and variant
    assert sum(p.n for p in quality.points) == 600
    # the windows follow the clock: the requests may straddle two hours
    means = {
        variant: sum(p.mean * p.n for p in quality.points if p.variant == variant)
        / sum(p.n for p in quality.points if p.variant == variant)
        for variant in ("champion", "challenger")
    }
    assert means["challenger"] == 1.0 and means["champion"] < 0.5
    comparison = report.report.comparison("challenger")
    assert comparison.status == "better" and comparison.p_value < 0.001
    assert report.sequential["challenger"].rejected

    with pytest.raises(InvalidArgument, match="already runs a split"):
        hub.ab_start("fraud-svc", "v0.0.2")
    status = hub.ab_promote("fraud-svc")
    assert status.traffic is None and status.serving_version == "v0.0.2"
    assert hub.show("fraud#prod").version == "v0.0.2"  # the winner took the stage
    assert {v for _, v, _ in send(status.endpoint, 20)} == {None}
    messages = [r.message for r in hub.revisions("fraud-svc")]
    assert messages[1].startswith("Start split") and messages[2].startswith("Promote challenger")


def test_stopping_sends_everything_back_to_the_champion(deployed: Hub) -> None:
    hub = deployed
    hub.deploy("fraud@v0.0.1", "svc")
    status = hub.ab_start("svc", "v0.0.2", kind="bluegreen")
    assert {version for _, _, version in send(status.endpoint, 30)} == {"v0.0.2"}
    messages = [r.message for r in hub.revisions("svc")]
    assert messages[-2].startswith("Start bluegreen") and messages[-1].startswith("Switch svc")
    pids = {r.pid for r in hub.deployment("svc").replicas}
    status = hub.ab_stop("svc", "switching back")
    assert status.traffic is not None and status.traffic.state == "stopped"
    assert status.traffic.reason == "switching back"
    assert {version for _, _, version in send(status.endpoint, 30)} == {"v0.0.1"}
    # the switch to blue-green's new side was applied to the running replicas, no restart
    log = "\n".join(hub.deployment_logs("svc", 200))
    assert "traffic policy applied" in log
    assert pids  # (the switch back retires the green side: replicas are replaced then)
    with pytest.raises(InvalidArgument, match="runs no experiment"):
        hub.ab_stop("svc")


def test_a_shadow_report_compares_both_answers(deployed: Hub) -> None:
    hub = deployed
    hub.deploy("fraud@v0.0.1", "svc", server={"sample_rate": 1.0})
    status = hub.ab_start("svc", "v0.0.2", kind="shadow")
    answers = send(status.endpoint, 50, key_prefix=None)
    assert {version for _, _, version in answers} == {"v0.0.1"}

    def compared():
        try:
            report = hub.shadow_report("svc")
        except InvalidArgument:
            return None
        return report if report.n == 50 else None

    report = wait_for(compared, 30, "both answers of 50 requests in the logs")
    # v0.0.2 was trained on the opposite labels: it disagrees on every row
    assert report.agreement_rate == 0.0
    ids = {rid for rid, _, _ in answers}
    assert report.top_disagreements and all(d.request_id in ids for d in report.top_disagreements)


def test_bad_experiments_are_refused_with_the_reason(deployed: Hub) -> None:
    hub = deployed
    hub.deploy("fraud@v0.0.1", "svc")
    with pytest.raises(InvalidArgument, match="already the champion"):
        hub.ab_start("svc", "v0.0.1")
    with pytest.raises(InvalidArgument, match="one share per variant"):
        hub.ab_start("svc", "v0.0.2", split="50/30/20")
    with pytest.raises(InvalidArgument, match="Unknown experiment kind"):
        hub.ab_start("svc", "v0.0.2", kind="sticky")
    assert hub.deployment("svc").traffic is None  # nothing was recorded
    hub.ab_start("svc", "v0.0.2", split="90/10")
    with pytest.raises(InvalidArgument, match="runs a split, not a canary"):
        hub.ab_stop("svc", kind="canary")
    assert hub.ab_policy("svc").running


def send_counting(endpoint: str, n: int) -> Counter:
    """``n`` unkeyed requests; how many got each status."""
    url = urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    )
    statuses: Counter = Counter()
    try:
        for _ in range(n):
            conn.request(
                "POST", "/v2/models/fraud/infer", body, {"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
    finally:
        conn.close()
    return statuses


@pytest.fixture
def fast_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Experiment checks every 0.2 s, and replicas that can import tests/flaky_models.py."""
    from test_deploy import ROOT

    monkeypatch.setenv("MODELHUB_CONTROLLER_INTERVAL", "0.2")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{ROOT / 'tests'}")


def test_a_failing_canary_is_rolled_back_within_one_dwell(deployed: Hub, fast_controller) -> None:
    from flaky_models import FailsOnRealInput

    hub = deployed
    X = np.zeros((5, 4))
    hub.register(FailsOnRealInput().fit(X, [0, 1, 0, 1, 0]), "fraud", sample=X)  # v0.0.3
    hub.deploy("fraud@v0.0.1", "svc")
    status = hub.ab_start(
        "svc",
        "v0.0.3",
        kind="canary",
        steps="10,50,100",
        dwell_seconds=30,
        guardrails={"max_error_rate": 0.05, "min_requests": 20},
    )
    started = time.monotonic()
    seen: Counter = Counter()

    def rolled_back():
        seen.update(send_counting(status.endpoint, 50))
        policy = hub.revisions("svc")[-1].spec.traffic  # committed, with its reason
        return policy if policy is not None and policy.state == "rolled_back" else None

    policy = wait_for(rolled_back, 30, "the canary to be rolled back")
    elapsed = time.monotonic() - started
    print(f"canary rolled back after {elapsed:.1f} s; client saw {dict(seen)}")
    assert elapsed < 30  # within one dwell period
    assert "error rate" in policy.reason
    total = sum(seen.values())
    # failures only ever came from the challenger's 10% share
    assert seen[500] <= 0.1 * total + 3 * (0.1 * 0.9 * total) ** 0.5 + 5, seen
    # afterwards the champion answers everything
    wait_for(lambda: send_counting(status.endpoint, 30) == Counter({200: 30}), 30, "champion only")
    spec = yaml.safe_load((hub.path / "deployments" / "svc.yaml").read_text())
    assert spec["traffic"]["state"] == "rolled_back"
    assert hub.revisions("svc")[-1].message.startswith("Roll back canary")


def test_a_healthy_canary_advances_step_by_step(deployed: Hub, fast_controller) -> None:
    hub = deployed
    hub.deploy("fraud@v0.0.1", "svc")
    status = hub.ab_start(
        "svc",
        "v0.0.2",
        kind="canary",
        steps="20,100",
        dwell_seconds=1,
        guardrails={"min_requests": 10},
    )

    def at_last_step():
        send_counting(status.endpoint, 30)
        revisions = hub.revisions("svc")  # the committed history, not just the file
        policy = revisions[-1].spec.traffic
        return policy if policy is not None and policy.step == 1 else None

    policy = wait_for(at_last_step, 40, "the canary to reach its last step")
    assert policy.weights == {"challenger": 1.0, "champion": 0.0} and policy.running
    messages = [r.message for r in hub.revisions("svc")]
    assert any(m.startswith("Advance canary") for m in messages), messages
    wait_for(
        lambda: {v for _, _, v in send(status.endpoint, 20)} == {"v0.0.2"}, 30, "all on v0.0.2"
    )
