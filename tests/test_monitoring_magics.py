"""``%modelhub drift/drift-data/monitor/alerts``: what a user sees in a cell, on a real local
deployment (stopped in teardown) that logged requests in which feature f2 was shifted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from test_deploy import stop_every_deployment, use_model_server, wait_for
from test_magics import RaisingShell, cell, ip, usage_error  # noqa: F401  (ip is a fixture)
from test_monitoring_cli import SHIFTED, send_rows, shifted_rows

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.views import Message, Table
from jupyter_modelhub.widgets.drift import DriftWidget
from jupyter_modelhub.widgets.monitor import MonitorWidget

ROWS = 300


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


@pytest.fixture
def registered(ip: RaisingShell, hub: Hub, classifier, training_data) -> Hub:  # noqa: F811
    X, _ = training_data
    hub.register(classifier, "fraud", sample=X[:5], reference=X, onnx=True)
    columns = ["f0", "f1", "f2", "f3"]
    ip.user_ns.update(X_week=pd.DataFrame(shifted_rows(300), columns=columns))
    return hub


def logged(hub: Hub) -> bool:
    try:
        return hub.drift("svc").n_rows >= ROWS
    except InvalidArgument:
        return False


@pytest.fixture
def served(registered: Hub) -> Iterator[Hub]:
    """``svc`` serves fraud@v0.0.1 and has logged ROWS shifted rows."""
    try:
        registered.deploy("fraud", "svc")
        send_rows(registered.deployment("svc").endpoint, shifted_rows(ROWS))
        wait_for(lambda: logged(registered), 60, "the requests in the prediction log")
        yield registered
    finally:
        stop_every_deployment(registered)


def test_drift_and_monitor_in_cells(ip: RaisingShell, served: Hub, tmp_path: Path) -> None:  # noqa: F811
    dashboard = cell(ip, "%modelhub drift svc")
    try:
        assert isinstance(dashboard, DriftWidget)
        assert dashboard.features.value == SHIFTED  # the most drifted feature is selected
        assert dashboard.histogram.layout.title.text.startswith(f"{SHIFTED}: reference vs current")
        assert dashboard.window.value == "all" and dashboard.drift.timeline is not None
        # the quality figure asks the hub, which has no outcome for these requests yet
        assert "No outcome was posted back" in dashboard.quality.layout.title.text
        dashboard.window.value = "1h"
        assert dashboard.refreshes == 2 and dashboard.drift.n_rows == ROWS
    finally:
        dashboard.close()
    windowed = cell(ip, "%modelhub drift svc --window 6h --test psi")
    try:
        assert windowed.window.value == "6h"
        assert {f.test for f in windowed.drift.report.features} == {"psi"}
    finally:
        windowed.close()

    data = cell(ip, "%modelhub drift svc --json")
    assert [f["column"] for f in data["report"]["features"] if f["drifted"]] == [SHIFTED]
    page = tmp_path / "drift.html"
    written = cell(ip, f"%modelhub drift svc --html {page}")
    assert isinstance(written, Message) and page.stat().st_size < 1_000_000

    monitor = cell(ip, "%modelhub monitor svc --interval 1h")
    try:
        assert isinstance(monitor, MonitorWidget) and monitor.auto_refreshing
        send_rows(served.deployment("svc").endpoint, shifted_rows(40))
        monitor.refresh()
        assert sum(p.requests for p in monitor.points) >= 2
        assert "replica 0: ready" in monitor.summary.value
    finally:
        monitor.close()
    assert not monitor.auto_refreshing
    health = cell(ip, "%modelhub monitor svc --interval 100ms --json")
    assert [r["health"] for r in health["replicas"]] == ["ready"]


def test_drift_of_a_variable(ip: RaisingShell, registered: Hub) -> None:  # noqa: F811
    table = cell(ip, "%modelhub drift-data fraud X_week")
    assert isinstance(table, Table)
    assert table.rows[0][0] == SHIFTED and table.rows[0][-1] == "DRIFTED"
    assert table.title.startswith("Drift of X_week against the reference of fraud")
    assert "<th style='text-align:left'>effect size</th>" in table._repr_html_()


def test_alert_files_from_a_cell(ip: RaisingShell, tmp_path: Path) -> None:  # noqa: F811
    written = cell(ip, f"%modelhub alerts export --out {tmp_path / 'mon'} --deployment svc")
    assert isinstance(written, Message)
    assert sorted(p.name for p in (tmp_path / "mon").iterdir()) == [
        "modelhub-alerts.yml",
        "modelhub-grafana.json",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%modelhub drift nosuch", "No deployment named 'nosuch' in this hub."),
        ("%modelhub monitor nosuch", "No deployment named 'nosuch' in this hub."),
        ("%modelhub drift svc --window 1x", "argument --window: invalid duration '1x'"),
        ("%modelhub drift-data fraud X_wek", "No variable or file named 'X_wek' (did you mean "
         "'X_week'?)"),
        ("%modelhub drift-data fraud X_week --test nope", "Unknown drift test 'nope'."),
        ("%modelhub alerts run svc --webhook http://127.0.0.1:9/",
         "`alerts run` runs until Ctrl-C, which would block this kernel. Run it in a terminal: "
         "modelhub alerts run svc --webhook URL"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line(
    ip: RaisingShell,  # noqa: F811
    registered: Hub,
    line: str,
    message: str,
) -> None:
    assert message in usage_error(ip, line)
