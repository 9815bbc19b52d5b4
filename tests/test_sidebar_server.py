"""The REST routes added for the JupyterLab sidebar, through a real Jupyter server
(pytest-jupyter, authenticated): the deployment targets, a deploy with a target, and the
drift badge's verdict (``drift``, ``ok`` or ``no_data``, never an error for missing data).
JSON answers are checked against docs/openapi.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_deploy import stop_every_deployment, use_model_server
from test_deploy_server import call, checked  # noqa: F401  (fixtures)
from test_monitoring_server import served  # noqa: F401  (fixture)

from jupyter_modelhub import Hub

SUMMARY = "/deployments/{name}/drift/summary"


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


@pytest.fixture
def bare(hub: Hub, classifier, training_data) -> Iterator[Hub]:
    """``plain`` serves a version without reference data, ``fresh`` one with reference data
    but no request logged yet."""
    X, _ = training_data
    hub.register(classifier, "plain", sample=X[:5], onnx=True)
    hub.register(classifier, "fraud", sample=X[:5], reference=X, onnx=True)
    try:
        hub.deploy("plain", "plain")
        hub.deploy("fraud", "fresh")
        yield hub
    finally:
        stop_every_deployment(hub)


async def test_targets_lists_local_first(checked) -> None:  # noqa: F811
    reply = await checked("GET", "/targets", 200, "targets")
    assert reply["targets"][0] == "local"
    assert len(reply["targets"]) == len(set(reply["targets"]))


async def test_deploy_with_a_target(checked, bare: Hub) -> None:  # noqa: F811
    status = await checked(
        "POST", "/deployments", 201, "deployments",
        body={"ref": "plain", "name": "chosen", "target": "local"},
    )  # fmt: skip
    assert (status["name"], status["target"], status["phase"]) == ("chosen", "local", "running")
    reply = await checked(
        "POST", "/deployments", 400, "deployments",
        body={"ref": "plain", "name": "other", "target": "mainframe"},
    )  # fmt: skip
    assert reply["error"] == "INVALID_ARGUMENT"
    assert reply["message"].startswith("Unknown deployment target 'mainframe'.")
    assert "local" in reply["message"]  # the hint lists the known targets
    reply = await checked(
        "POST", "/deployments", 400, "deployments", body={"ref": "plain", "target": 3}
    )
    assert "target" in reply["message"]


async def test_drift_summary_without_data_is_no_data(checked, bare: Hub) -> None:  # noqa: F811
    plain = await checked("GET", SUMMARY, 200, "deployments", "plain", "drift", "summary")
    assert (plain["state"], plain["ref"], plain["n_rows"]) == ("no_data", "plain@v0.0.1", 0)
    assert "has no reference data" in plain["message"]
    assert plain["drift_share"] is None

    fresh = await checked("GET", SUMMARY, 200, "deployments", "fresh", "drift", "summary")
    assert fresh["state"] == "no_data" and fresh["ref"] == "fraud@v0.0.1"
    assert "logged no prediction" in fresh["message"]

    unknown = await checked("GET", SUMMARY, 404, "deployments", "nosuch", "drift", "summary")
    assert unknown["message"].startswith("No deployment named 'nosuch' in this hub.")
    bad = await checked(
        "GET", SUMMARY, 400, "deployments", "fresh", "drift", "summary", query="?window=5q"
    )
    assert bad["error"] == "INVALID_ARGUMENT" and "'5q' is not a duration." in bad["message"]


async def test_drift_summary_of_shifted_requests(checked, served: Hub) -> None:  # noqa: F811
    reply = await checked("GET", SUMMARY, 200, "deployments", "svc", "drift", "summary")
    # One shifted feature of four stays under the dataset-level share: no dataset drift.
    assert (reply["state"], reply["n_drifted"], reply["n_features"]) == ("ok", 1, 4)
    assert reply["n_rows"] == 300 and reply["drift_share"] == 0.25
    assert reply["drift_share"] < reply["drift_share_threshold"]
    assert reply["message"] == "1 of 4 features drifted over 300 requests"


async def test_monitor_counts_the_requests_of_its_interval(checked, bare: Hub) -> None:  # noqa: F811
    """The sidebar's sparklines: requests sent while ``/monitor`` measures are counted, and
    twelve measurements at once all answer."""
    import asyncio
    import threading

    from test_monitoring_cli import send_rows, shifted_rows

    endpoint = bare.deployment("fresh").endpoint
    done = threading.Event()

    def traffic() -> int:
        sent = 0
        while not done.is_set():
            sent += send_rows(endpoint, shifted_rows(20), 10)
        return sent

    async def measure() -> dict[str, Any]:
        query = "?interval=1.5"
        path = "/deployments/{name}/monitor"
        return await checked("GET", path, 200, "deployments", "fresh", "monitor", query=query)

    sending = asyncio.ensure_future(asyncio.to_thread(traffic))
    try:
        replies = await asyncio.gather(*(measure() for _ in range(12)))
    finally:
        done.set()
        sent = await sending
    assert sent > 0
    counted = [sum(p["requests"] for p in reply["health"]) for reply in replies]
    assert all(n > 0 for n in counted), counted
