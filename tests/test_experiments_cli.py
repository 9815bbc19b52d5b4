"""Experiments from a terminal: ``modelhub ab/canary/shadow/bluegreen`` through a subprocess,
on a real local deployment (stopped in teardown)."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from test_cli import modelhub
from test_deploy import register_two_versions, stop_every_deployment, use_model_server, wait_for
from test_experiments_deploy import ROW, post_feedback

from jupyter_modelhub import Hub


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


@pytest.fixture
def deployed(hub: Hub, classifier, training_data) -> Iterator[Hub]:
    yield register_two_versions(hub, classifier, training_data)
    stop_every_deployment(hub)


def send_keyed(endpoint: str, users: range) -> list[tuple[str, str]]:
    """One v2 request per user, keyed by the ``user_id`` request parameter: (key, variant)."""
    url = urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    out = []
    try:
        for user in users:
            body = {
                "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}],
                "parameters": {"user_id": f"u{user}"},
            }
            conn.request("POST", "/v2/models/fraud/infer", json.dumps(body),
                         {"Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
            out.append((f"u{user}", response.getheader("X-Modelhub-Variant")))
    finally:
        conn.close()
    return out


def test_an_ab_test_from_a_terminal(deployed: Hub) -> None:
    hub = deployed.path
    modelhub("deploy", "fraud#prod", "--name", "svc", "--follow", hub=hub)
    started = modelhub(
        "ab", "start", "svc", "--challenger", "v0.0.2", "--split", "50/50", "--key", "user_id",
        "--max-p95", "2s", hub=hub,
    ).stdout.splitlines()  # fmt: skip
    assert started[0].startswith("Started split ") and started[0].endswith(" on svc")
    assert started[1:3] == [
        "champion v0.0.1: 50% (serving)",
        "challenger v0.0.2: 50% (serving)",
    ]
    status = modelhub("ab", "status", "svc", hub=hub).stdout.splitlines()
    assert status[0].endswith("on svc: running")
    assert "guardrails: error rate <= 5%, p95 <= 2s, judged on >= 50 requests" in status
    header = [line.split() for line in status].index(
        ["VARIANT", "VERSION", "SHARE", "STATE", "REASON"]
    )
    assert status[header + 1].split() == ["champion", "v0.0.1", "50%", "serving"]

    endpoint = json.loads(modelhub("ab", "status", "svc", "--json", hub=hub).stdout)["endpoint"]
    answers = send_keyed(endpoint, range(80))
    assert send_keyed(endpoint, range(80)) == answers  # sticky by user_id
    items = [{"key": key, "outcome": int(variant == "challenger")} for key, variant in answers]
    assert post_feedback(endpoint, items)["accepted"] == 80

    keys = Counter(variant for _, variant in answers)

    def reported() -> dict | None:
        # binary outcomes count a request without one as 0: wait for every request (two per
        # key) and for every 1 posted (one per challenger key), which are flushed separately
        out = modelhub("ab", "report", "svc", "--min-samples", "10", "--json", hub=hub).stdout
        report = json.loads(out)
        ones = {v["name"]: v["successes"] for v in report["report"]["variants"]}
        complete = report["requests"] == {v: 2 * n for v, n in keys.items()}
        return report if complete and ones.get("challenger") == keys["challenger"] else None

    report = wait_for(reported, 20, "the outcomes in the report")
    assert report["report"]["comparisons"][0]["status"] == "better"
    table = modelhub("ab", "report", "svc", "--min-samples", "10", hub=hub).stdout.splitlines()
    assert table[1].split()[:3] == ["VARIANT", "REQUESTS", "OUTCOMES"]
    assert any(line.startswith("challenger") and "better" in line for line in table)
    quality = json.loads(modelhub("quality", "svc", "--step", "1h", "--json", hub=hub).stdout)
    assert quality["metric"] == "rate"
    assert {p["variant"]: p["mean"] for p in quality["points"]}["challenger"] == 1.0
    text = modelhub("quality", "svc", hub=hub).stdout.splitlines()
    assert text[0].startswith("Quality of svc: outcome rate per 3600 s window")

    promoted = modelhub("ab", "promote", "svc", hub=hub).stdout.splitlines()
    assert promoted[0] == "Promoted: deployment svc serves fraud@v0.0.2"
    assert deployed.show("fraud#prod").version == "v0.0.2"


def test_a_canary_from_a_terminal(deployed: Hub) -> None:
    hub = deployed.path
    modelhub("deploy", "fraud@v0.0.1", "--name", "svc", hub=hub)
    out = modelhub(
        "canary", "start", "svc", "--challenger", "v0.0.2", "--steps", "10,50,100",
        "--dwell", "1h", "--max-error-rate", "2%", hub=hub,
    ).stdout  # fmt: skip
    assert "challenger v0.0.2: 10% (serving)" in out
    assert "step 1 of 3 (10% -> 50% -> 100%), 1h per step" in out
    assert (
        "challenger v0.0.2: 50% (serving)" in modelhub("canary", "advance", "svc", hub=hub).stdout
    )
    stopped = modelhub("canary", "stop", "svc", "--reason", "enough", hub=hub).stdout
    assert stopped.splitlines()[0].startswith("Stopped canary ")
    assert "challenger v0.0.2: 0% (stopped), enough" in stopped


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ab", "stat", "svc"], "unknown action 'stat'. Did you mean 'status'?"),
        (["canary", "strat", "svc"], "unknown action 'strat'. Did you mean 'start'?"),
        (["ab"], "say which action: start, status, stop, promote, report, plan"),
        (["canary", "start", "svc", "--challenger", "v0.0.2", "--dwell", "5q"],
         "argument --dwell: invalid duration '5q': write a positive number with a unit"),
        (["canary", "start", "svc", "--challenger", "v0.0.2", "--max-error-rate", "two"],
         "invalid share 'two'"),
        (["ab", "report", "svc", "--metric", "median"], "argument --metric: invalid choice"),
        (["ab", "status", "nosuch"], "No deployment named 'nosuch'"),
        (["ab", "promote", "nosuch"], "No deployment named 'nosuch'"),
    ],
)  # fmt: skip
def test_mistakes_exit_2_with_one_line(hub: Hub, args: list[str], message: str) -> None:
    proc = modelhub(*args, hub=hub.path, ok=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_help_explains_with_examples() -> None:
    top = modelhub("--help").stdout
    for verb in ("ab", "canary", "bluegreen", "shadow"):
        assert f"\n    {verb}" in top
    ab = modelhub("ab", "--help").stdout
    assert "Example: modelhub ab start fraud-svc --challenger v0.0.2" in ab
    start = modelhub("canary", "start", "--help").stdout
    assert "--dwell DURATION" in start
    assert "Example: modelhub canary start fraud-svc --challenger v0.0.2 --steps 5,25,50,100" in (
        start
    )
    plan = modelhub("ab", "plan", "--help").stdout
    assert "--baseline BASELINE" in plan and "--per-day N" in plan


def test_a_sample_size_plan(hub: Hub) -> None:
    out = modelhub(
        "ab", "plan", "--baseline", "0.1", "--mde", "0.01", "--per-day", "20000", hub=hub.path
    ).stdout
    assert out.startswith("14,745 requests for the control and 14,745 per challenger")
    plan = json.loads(
        modelhub("ab", "plan", "--baseline", "0.1", "--mde", "0.01", "--json", hub=hub.path).stdout
    )
    assert plan["requests_control"] == 14745
