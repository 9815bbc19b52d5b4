"""The A/B report widget: figure building without a browser, the widget's parts, refresh,
and the auto-refresh timer that stops when the widget is closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.analysis import ExperimentAnalysis, VariantOutcomes, analyse
from jupyter_modelhub.widgets import ABReportWidget, ab_report_figure


def analysis(n: int, rates: tuple[float, float] = (0.1, 0.3), seed: int = 0) -> ExperimentAnalysis:
    """An analysis of ``n`` outcomes per variant (champion, challenger)."""
    rng = np.random.default_rng(seed)
    data = {
        name: VariantOutcomes(
            name, n, (rng.random(n) < rate).astype(float), np.arange(n, dtype=float)
        )
        for name, rate in zip(("champion", "challenger"), rates, strict=True)
    }
    return analyse("exp1", data, min_samples=20, look_every=20)


class Reader:
    """A loader that returns a bigger analysis at each call, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> ExperimentAnalysis:
        self.calls += 1
        return analysis(100 * self.calls)


@pytest.fixture
def reader() -> Reader:
    return Reader()


@pytest.fixture
def report(reader: Reader) -> Iterator[ABReportWidget]:
    widget = ABReportWidget(reader)
    yield widget
    widget.close()


def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- the figure ----------------------------------------------------------------------------------
def test_the_figure_has_each_variant_with_its_interval() -> None:
    data = analysis(400)
    figure = ab_report_figure(data)

    assert isinstance(figure, go.Figure)
    estimates = figure.data[0]
    assert list(estimates.x) == ["champion", "challenger"]
    for variant, y, up, down in zip(
        data.report.variants,
        estimates.y,
        estimates.error_y.array,
        estimates.error_y.arrayminus,
        strict=True,
    ):
        assert variant.ci is not None
        assert y == variant.estimate
        assert y + up == pytest.approx(variant.ci.high)
        assert y - down == pytest.approx(variant.ci.low)
    assert estimates.xaxis == "x"


def test_the_figure_draws_the_always_valid_p_over_looks_and_alpha() -> None:
    data = analysis(400)
    now = data.sequential["challenger"]
    figure = ab_report_figure(data, {"challenger": [(5, 0.4), (10, 0.2)]})

    curve = figure.data[1]
    assert (curve.name, curve.xaxis) == ("challenger", "x2")
    assert list(curve.x) == [5, 10, now.looks] and list(curve.y) == [0.4, 0.2, now.p_value]
    assert [shape.y0 for shape in figure.layout.shapes] == [0.05]
    # without history the current value alone is drawn
    alone = ab_report_figure(data).data[1]
    assert list(alone.x) == [now.looks] and list(alone.y) == [now.p_value]


def test_a_variant_without_data_is_left_out_of_the_figure() -> None:
    empty = {
        "champion": VariantOutcomes("champion", 0, np.array([]), np.array([])),
        "challenger": VariantOutcomes("challenger", 3, np.array([1.0, 0, 1]), np.arange(3.0)),
    }
    figure = ab_report_figure(analyse("e", empty, metric="mean"))
    assert list(figure.data[0].x) == ["challenger"]


# -- the widget ----------------------------------------------------------------------------------
def test_the_widget_shows_a_summary_a_figure_and_a_refresh_button(
    report: ABReportWidget, reader: Reader
) -> None:
    assert isinstance(report, widgets.VBox)
    summary, figure, controls = report.children
    assert isinstance(summary, widgets.HTML) and isinstance(figure, go.FigureWidget)
    assert "<table" in summary.value and "always-valid p" in summary.value
    assert controls.children[0].description == "Refresh"
    assert reader.calls == 1 and len(figure.data) == 2
    assert repr(report).startswith("A/B report of experiment exp1")  # text in a terminal


def test_refresh_rereads_the_data(report: ABReportWidget, reader: Reader) -> None:
    before = report.figure.data[1].y
    report.controls.children[0].click()

    assert reader.calls == 2 and report.refreshes == 2
    assert report.analysis.requests == {"champion": 200, "challenger": 200}
    assert "200" in report.summary.value
    assert len(report.figure.data[1].y) == len(before) + 1  # one more look on the p curve


def test_a_failed_refresh_shows_the_reason_and_keeps_the_last_report(
    report: ABReportWidget,
) -> None:
    def broken() -> ExperimentAnalysis:
        raise InvalidArgument("Deployment 'svc' has no experiment.")

    report._load = broken
    report.refresh()
    assert "could not refresh: Deployment &#x27;svc&#x27; has no experiment." in (
        report.status.value
    )
    assert report.analysis.requests["champion"] == 100


def test_auto_refresh_in_a_thread_stops_when_closed(reader: Reader) -> None:
    widget = ABReportWidget(reader, refresh_seconds=0.01)
    until(lambda: reader.calls >= 3)
    assert widget.auto_refreshing
    widget.close()
    assert not widget.auto_refreshing
    calls = reader.calls
    assert widget._thread is not None and not widget._thread.is_alive()
    assert reader.calls == calls


async def test_auto_refresh_on_the_event_loop_stops_when_closed(reader: Reader) -> None:
    widget = ABReportWidget(reader, refresh_seconds=0.01)
    assert widget._task is not None and widget._thread is None
    deadline = time.monotonic() + 10
    # the redraw follows the read on the loop: wait for redraws, not for reads
    while widget.refreshes < 3:
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)
    assert reader.calls >= 3
    widget.close()
    with pytest.raises(asyncio.CancelledError):
        await widget._task
    assert not widget.auto_refreshing
