"""``%modelhub ab/canary/shadow/bluegreen``: what a user sees in a cell, on a real local
deployment (stopped in teardown)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_deploy import register_two_versions, stop_every_deployment, use_model_server
from test_magics import RaisingShell, cell, ip, usage_error  # noqa: F401  (ip is a fixture)

from jupyter_modelhub import Hub
from jupyter_modelhub.views import Message, Table
from jupyter_modelhub.widgets import ABReportWidget


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


@pytest.fixture
def served(ip: RaisingShell, hub: Hub, classifier, training_data) -> Iterator[Hub]:  # noqa: F811
    """fraud v0.0.1 deployed as ``svc``, v0.0.2 ready to be its challenger."""
    register_two_versions(hub, classifier, training_data)
    hub.deploy("fraud@v0.0.1", "svc")
    yield hub
    stop_every_deployment(hub)


def test_an_ab_test_in_cells(ip: RaisingShell, served: Hub) -> None:  # noqa: F811
    started = cell(ip, "%modelhub ab start svc --challenger v0.0.2 --split 90/10 --key user_id")
    assert isinstance(started, Message) and started.text.startswith("Started split ")
    assert started.details[:2] == [
        "champion v0.0.1: 90% (serving)",
        "challenger v0.0.2: 10% (serving)",
    ]
    assert "sticky key: request field 'user_id' or the X-Modelhub-Key header" in started.details

    status = cell(ip, "%modelhub ab status svc")
    assert isinstance(status, Table)
    assert [row[:4] for row in status.rows] == [
        ["champion", "v0.0.1", "90%", "serving"],
        ["challenger", "v0.0.2", "10%", "serving"],
    ]
    assert "<th style='text-align:left'>share</th>" in status._repr_html_()
    data: Any = cell(ip, "%modelhub ab status svc --json")
    assert data["traffic"]["weights"] == {"challenger": 0.1, "champion": 0.9}

    report = cell(ip, "%modelhub ab report svc")
    try:
        assert isinstance(report, ABReportWidget)
        assert report.analysis.requests == {"challenger": 0, "champion": 0}
        assert "not enough data" in report.summary.value
        report.refresh()
        assert report.refreshes == 2
    finally:
        report.close()
    as_json = cell(ip, "%modelhub ab report svc --json")
    assert as_json["report"]["control"] == "champion"

    stopped = cell(ip, "%modelhub ab stop svc --reason 'looked wrong'")
    assert stopped.details[1] == "challenger v0.0.2: 0% (stopped), looked wrong"
    assert usage_error(ip, "%modelhub ab promote svc") == (
        "Deployment 'svc' runs no experiment. Start one: `ab start svc --challenger VERSION`."
    )


def test_a_report_that_refreshes_itself_stops_when_closed(
    ip: RaisingShell,  # noqa: F811
    served: Hub,
) -> None:
    cell(ip, "%modelhub shadow start svc --challenger v0.0.2")
    report = cell(ip, "%modelhub ab report svc --refresh 1h")
    assert report.auto_refreshing
    report.close()
    assert not report.auto_refreshing


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%modelhub ab stat svc", "%modelhub ab: unknown action 'stat'. Did you mean 'status'?\n"
         "usage: %modelhub ab [-h] ACTION ..."),
        ("%modelhub shadow", "%modelhub shadow: say which action: start, status, stop, promote, "
         "report (see --help).\nusage: %modelhub shadow [-h] ACTION ..."),
        ("%modelhub canary start svc --challenger v0.0.2 --dwell soon",
         "%modelhub canary start: argument --dwell: invalid duration 'soon': write a positive "
         "number with a unit, e.g. 30s, 5m or 1h"),
        ("%modelhub ab report svc --refresh 0s",
         "%modelhub ab report: argument --refresh: invalid duration '0s'"),
        ("%modelhub ab status svc --all", "%modelhub ab status: unrecognized arguments: --all\n"
         "usage: %modelhub ab status [-h] [--json] NAME"),
        ("%modelhub ab status nosuch", "No deployment named 'nosuch'"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_usage_errors(
    ip: RaisingShell,  # noqa: F811
    line: str,
    message: str,
) -> None:
    assert usage_error(ip, line).startswith(message)


def test_help_of_an_action(ip: RaisingShell, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert cell(ip, "%modelhub ab report --help") is None
    out = capsys.readouterr().out
    assert out.startswith("usage: %modelhub ab report [-h] [--json]")
    assert "--refresh DURATION" in out
    assert "Example: %modelhub ab report fraud-svc --metric rate --alpha 0.05" in out
