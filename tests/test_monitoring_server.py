"""The monitoring routes of the REST API through a real Jupyter server (pytest-jupyter): drift,
its HTML page, health, alert rules and the Grafana dashboard. A real local deployment on
127.0.0.1 (stopped in teardown); JSON answers are checked against docs/openapi.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from test_deploy import stop_every_deployment, use_model_server, wait_for
from test_deploy_server import call, checked  # noqa: F401  (fixtures)
from test_monitoring_cli import SHIFTED, send_rows, shifted_rows
from tornado.httpclient import HTTPClientError

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import InvalidArgument

ROWS = 300
DRIFT = "/deployments/{name}/drift"


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


def logged(hub: Hub) -> bool:
    try:
        return hub.drift("svc").n_rows >= ROWS
    except InvalidArgument:
        return False


@pytest.fixture
def served(hub: Hub, classifier, training_data) -> Iterator[Hub]:
    """``svc`` serves fraud@v0.0.1 (registered with reference data) and logged ROWS rows with
    f2 shifted; ``bare`` is a version without reference data."""
    X, _ = training_data
    hub.register(classifier, "fraud", sample=X[:5], reference=X, onnx=True)
    try:
        hub.deploy("fraud", "svc")
        send_rows(hub.deployment("svc").endpoint, shifted_rows(ROWS))
        wait_for(lambda: logged(hub), 60, "the requests in the prediction log")
        yield hub
    finally:
        stop_every_deployment(hub)


async def fetch_text(jp_fetch, *parts: str, **params: Any) -> tuple[int, str, str]:
    """(status, content type, body) of a GET that answers text."""
    try:
        response = await jp_fetch("modelhub", "api", *parts, params=params)
    except HTTPClientError as error:
        assert error.response is not None
        response = error.response
    return response.code, response.headers["Content-Type"], response.body.decode()


async def test_monitoring_over_rest(checked, jp_fetch, served: Hub) -> None:  # noqa: F811
    drift = await checked("GET", DRIFT, 200, "deployments", "svc", "drift")
    assert drift["ref"] == "fraud@v0.0.1" and drift["n_rows"] == ROWS
    features = drift["report"]["features"]
    assert [f["column"] for f in features if f["drifted"]] == [SHIFTED]
    assert features[0]["histogram"]["reference"]  # the dashboards' aggregates

    windowed = await checked(
        "GET", DRIFT, 200, "deployments", "svc", "drift",
        query="?window=1h&over_time=30m&test=psi&correction=bonferroni",
    )  # fmt: skip
    assert windowed["window"]["start"] is not None and windowed["timeline"] is not None
    assert {f["test"] for f in windowed["report"]["features"]} == {"psi"}
    assert windowed["report"]["correction"] == "bonferroni"

    code, kind, page = await fetch_text(jp_fetch, "deployments", "svc", "drift.html", window="1h")
    assert (code, kind) == (200, "text/html; charset=UTF-8")
    assert page.startswith("<!DOCTYPE html>") and f"<td>{SHIFTED}</td>" in page

    health = await checked(
        "GET", "/deployments/{name}/monitor", 200, "deployments", "svc", "monitor",
        query="?interval=0.2",
    )  # fmt: skip
    assert health["name"] == "svc" and [r["health"] for r in health["replicas"]] == ["ready"]

    code, kind, rules = await fetch_text(
        jp_fetch, "alerts", "rules", deployment="svc", error_rate="0.02", p99="0.3"
    )
    assert (code, kind) == (200, "text/yaml; charset=UTF-8")
    group = yaml.safe_load(rules)["groups"][0]
    assert [r["alert"] for r in group["rules"]] == [
        "ModelhubHighErrorRate", "ModelhubHighLatencyP99", "ModelhubDataDrift",
    ]  # fmt: skip
    assert group["rules"][0]["expr"].endswith("> 0.02") and 'deployment=~"svc"' in rules

    dashboard = await checked("GET", "/alerts/grafana", 200, "alerts", "grafana")
    assert dashboard["schemaVersion"] == 39 and len(dashboard["panels"]) == 5


BAD_QUERIES = [
    ("?window=5q", "'5q' is not a duration."),
    ("?since=yesterday", "since is 'yesterday', not a date."),
    ("?window=1h&since=2026-01-01T00:00:00", "Both a window and a start (since) were given."),
    ("?test=nope", "Unknown drift test 'nope'."),
    ("?correction=holm", "Unknown multiple-testing correction 'holm'."),
    ("?all_versions=maybe", "all_versions='maybe' must be true or false"),
    ("?since=2999-01-01T00:00:00", "Deployment 'svc' logged no prediction"),
]


async def test_bad_drift_queries_are_400_with_the_reason(checked, served: Hub) -> None:  # noqa: F811
    for query, message in BAD_QUERIES:  # one deployment for all (its log takes 10 s to flush)
        reply = await checked("GET", DRIFT, 400, "deployments", "svc", "drift", query=query)
        assert reply["error"] == "INVALID_ARGUMENT" and message in reply["message"], query


async def test_unknown_deployments_and_bad_thresholds(
    checked,  # noqa: F811
    call,  # noqa: F811
    jp_fetch,
    hub: Hub,
    classifier,
    training_data,
) -> None:
    X, _ = training_data
    hub.register(classifier, "bare", sample=X[:5])
    for route, segment in ((DRIFT, "drift"), ("/deployments/{name}/monitor", "monitor")):
        reply = await checked("GET", route, 404, "deployments", "nosuch", segment)
        assert reply["message"].startswith("No deployment named 'nosuch' in this hub.")
    code, reply = await call("GET", "deployments", "nosuch", "drift.html")
    assert code == 404 and reply["error"] == "RESOURCE_DOES_NOT_EXIST"
    reply = await checked(
        "GET", "/deployments/{name}/monitor", 400, "deployments", "nosuch", "monitor",
        query="?interval=60",
    )  # fmt: skip
    assert "interval=60 must be in (0, 10]" in reply["message"]
    code, kind, body = await fetch_text(jp_fetch, "alerts", "rules", error_rate="2")
    assert code == 400 and kind.startswith("application/json")
    assert json.loads(body)["message"] == "error_rate is 2.0. Use a share in (0, 1]."
    code, _, body = await fetch_text(jp_fetch, "alerts", "rules", p99="fast")
    assert code == 400 and "p99='fast' must be a number" in json.loads(body)["message"]
