"""The experiment routes of the REST API, through a real Jupyter server (pytest-jupyter).

Real local deployments on 127.0.0.1, stopped in teardown; every answer is checked against
its schema in docs/openapi.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_deploy import register_two_versions, stop_every_deployment, use_model_server
from test_deploy_server import call, checked  # noqa: F401  (fixtures)
from test_experiments_deploy import post_feedback, send
from tornado.httpclient import HTTPClientError

from jupyter_modelhub import Hub


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


@pytest.fixture
def deployed(hub: Hub, classifier, training_data) -> Iterator[Hub]:
    yield register_two_versions(hub, classifier, training_data)
    stop_every_deployment(hub)


EXPERIMENT = "/deployments/{name}/experiment"


async def test_an_ab_test_over_rest(checked, deployed: Hub) -> None:  # noqa: F811
    deployed.deploy("fraud#prod", "svc", follow_stage=True)
    await checked("GET", EXPERIMENT, 404, "deployments", "svc", "experiment")
    started = await checked(
        "POST", EXPERIMENT, 201, "deployments", "svc", "experiment",
        body={"challenger": "v0.0.2", "split": "50/50", "guardrails": {"max_error_rate": 0.2}},
    )  # fmt: skip
    assert started["traffic"]["kind"] == "split"
    assert started["traffic"]["weights"] == {"challenger": 0.5, "champion": 0.5}
    policy = await checked("GET", EXPERIMENT, 200, "deployments", "svc", "experiment")
    assert policy["state"] == "running" and policy["guardrails"]["max_error_rate"] == 0.2

    answers = send(started["endpoint"], 60)
    items = [{"request_id": rid, "outcome": int(v == "challenger")} for rid, v, _ in answers]
    assert post_feedback(started["endpoint"], items)["accepted"] == 60

    async def reported() -> dict[str, Any] | None:
        report = await checked(
            "GET", f"{EXPERIMENT}/report", 200, "deployments", "svc", "experiment", "report",
            query="?min_samples=10&alpha=0.01",
        )  # fmt: skip
        # a request without an outcome counts as 0: wait for every 1 posted too
        ones = sum(v["successes"] for v in report["report"]["variants"])
        complete = sum(report["outcomes"].values()) == 60
        return report if complete and ones == sum(i["outcome"] for i in items) else None

    report = await poll(reported, 20, "60 outcomes in the report")
    assert report["report"]["alpha"] == 0.01
    assert report["report"]["comparisons"][0]["status"] == "better"
    assert set(report["sequential"]) == {"challenger"}

    # the shadow report also compares the two answers of requests both variants served
    await checked("GET", f"{EXPERIMENT}/shadow", 400, "deployments", "svc", "experiment", "shadow")
    # a canary step on a split is refused with the reason
    refused = await checked(
        "POST", f"{EXPERIMENT}/advance", 400, "deployments", "svc", "experiment", "advance"
    )
    assert "not a canary" in refused["message"]

    promoted = await checked(
        "POST", f"{EXPERIMENT}/promote", 200, "deployments", "svc", "experiment", "promote"
    )
    assert promoted["traffic"] is None and promoted["serving_version"] == "v0.0.2"
    assert deployed.show("fraud#prod").version == "v0.0.2"


async def test_the_sidebar_forms_bodies_are_taken(checked, deployed: Hub) -> None:  # noqa: F811
    """Each kind with the fields the sidebar's start-experiment form sends for it."""
    deployed.deploy("fraud#prod", "svc")
    guardrails = {"max_error_rate": 0.1, "max_p95_seconds": 2, "min_requests": 20}
    bodies: list[dict[str, Any]] = [
        {"kind": "split", "split": "80/20", "key": "user_id", "guardrails": guardrails},
        {"kind": "canary", "steps": "10,50", "dwell_seconds": 3600, "guardrails": guardrails},
        {"kind": "bluegreen"},
        {"kind": "shadow"},
    ]
    for body in bodies:
        started = await checked(
            "POST", EXPERIMENT, 201, "deployments", "svc", "experiment",
            body={"challenger": "fraud@v0.0.2", **body},
        )  # fmt: skip
        traffic = started["traffic"]
        assert (traffic["kind"], traffic["state"]) == (body["kind"], "running")
        if "guardrails" in body:
            assert traffic["guardrails"] == guardrails
        if body["kind"] == "split":
            assert traffic["key"] == "user_id"
            assert traffic["weights"] == {"champion": 0.8, "challenger": 0.2}
        await checked("DELETE", EXPERIMENT, 200, "deployments", "svc", "experiment")


async def test_a_canary_advances_and_stops_over_rest(checked, deployed: Hub) -> None:  # noqa: F811
    deployed.deploy("fraud@v0.0.1", "svc")
    started = await checked(
        "POST", EXPERIMENT, 201, "deployments", "svc", "experiment",
        body={"challenger": "v0.0.2", "kind": "canary", "steps": "10,50,100",
              "dwell_seconds": 3600, "guardrails": {"max_p95_seconds": None}},
    )  # fmt: skip
    assert started["traffic"]["weights"]["challenger"] == pytest.approx(0.1)
    assert started["traffic"]["guardrails"]["max_p95_seconds"] is None
    advanced = await checked(
        "POST", f"{EXPERIMENT}/advance", 200, "deployments", "svc", "experiment", "advance"
    )
    assert advanced["traffic"]["weights"]["challenger"] == pytest.approx(0.5)
    stopped = await checked(
        "DELETE", EXPERIMENT, 200, "deployments", "svc", "experiment", query="?reason=enough"
    )
    assert (stopped["traffic"]["state"], stopped["traffic"]["reason"]) == ("stopped", "enough")
    again = await checked("DELETE", EXPERIMENT, 400, "deployments", "svc", "experiment")
    assert "runs no experiment" in again["message"]


async def test_a_shadow_report_over_rest(checked, call, deployed: Hub) -> None:  # noqa: F811
    deployed.deploy("fraud@v0.0.1", "svc", server={"sample_rate": 1.0})
    started = await checked(
        "POST", EXPERIMENT, 201, "deployments", "svc", "experiment",
        body={"challenger": "v0.0.2", "kind": "shadow"},
    )  # fmt: skip
    send(started["endpoint"], 20, key_prefix=None)

    async def compared() -> dict[str, Any] | None:
        code, report = await call(
            "GET", "deployments", "svc", "experiment", "shadow", query="?top=3"
        )
        return report if code == 200 and report["n"] == 20 else None

    report = await poll(compared, 30, "both answers of 20 requests")
    await checked(
        "GET", f"{EXPERIMENT}/shadow", 200, "deployments", "svc", "experiment", "shadow",
        query="?top=3",
    )  # fmt: skip
    assert report["agreement_rate"] == 0.0 and len(report["top_disagreements"]) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "The field 'challenger' is required."),
        ({"challenger": "v0.0.2", "split": 90}, "The field 'split' must be a string"),
        ({"challenger": "v0.0.2", "dwell_seconds": "5m"}, "'dwell_seconds' must be a number"),
        ({"challenger": "v0.0.2", "guardrails": {"max_error_rate": "x"}}, "map names to numbers"),
        ({"challenger": "v0.0.2", "guardrails": {"max_errors": 1}}, "Unknown guardrail(s)"),
        ({"challenger": "v0.0.2", "kind": "sticky"}, "Unknown experiment kind 'sticky'"),
        ({"challenger": "v0.0.2", "split": "50/30/20"}, "give one share per variant"),
        ({"challenger": "v0.0.1"}, "already the champion"),
        ({"challenger": "v0.0.2", "colour": "red"}, "Unknown field(s) in the request body"),
    ],
)
async def test_bad_experiments_are_400_with_the_reason(
    checked,  # noqa: F811
    deployed: Hub,
    body: dict[str, Any],
    message: str,
) -> None:
    deployed.deploy("fraud@v0.0.1", "svc")
    reply = await checked("POST", EXPERIMENT, 400, "deployments", "svc", "experiment", body=body)
    assert reply["error"] == "INVALID_ARGUMENT" and message in reply["message"]
    assert deployed.deployment("svc").traffic is None


async def test_reading_mistakes_are_4xx(checked, hub: Hub) -> None:  # noqa: F811
    await checked("GET", EXPERIMENT, 404, "deployments", "nosuch", "experiment")
    await checked("GET", EXPERIMENT, 400, "deployments", "NoSuch", "experiment")
    for query in ("?alpha=x", "?min_samples=-1", "?higher_is_better=maybe"):
        reply = await checked(
            "GET", f"{EXPERIMENT}/report", 400, "deployments", "svc", "experiment", "report",
            query=query,
        )  # fmt: skip
        assert reply["message"].startswith("The query argument")
    await checked(
        "GET", f"{EXPERIMENT}/shadow", 400, "deployments", "svc", "experiment", "shadow",
        query="?top=many",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("verb", "suffix"),
    [("GET", ""), ("POST", ""), ("DELETE", ""), ("POST", "/promote"), ("POST", "/advance"),
     ("GET", "/report"), ("GET", "/shadow")],
)  # fmt: skip
async def test_without_the_token_every_experiment_route_is_403(
    jp_fetch, hub: Hub, verb: str, suffix: str
) -> None:
    headers = {"Authorization": "", "Cookie": "_xsrf=abc", "X-XSRFToken": "abc"}
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "modelhub", "api", "deployments", "svc", *f"experiment{suffix}".split("/"),
            method=verb,
            body=json.dumps({"challenger": "v0.0.2"}) if verb == "POST" else None,
            headers=headers,
            allow_nonstandard_methods=True,
        )  # fmt: skip
    assert info.value.code == 403
    assert json.loads(info.value.response.body)["error"] == "PERMISSION_DENIED"


async def poll(condition, timeout: float, what: str) -> Any:
    """Await ``condition()`` until it returns something truthy; fail after ``timeout`` s."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
