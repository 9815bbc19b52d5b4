"""The drift and monitor dashboards without a browser: their parts, refresh re-reading the data,
the selected feature driving the histogram, the window selector, and timers that stop on close."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest

from jupyter_modelhub.deploy.records import DeploymentStatus, ReplicaStatus
from jupyter_modelhub.errors import BackendError, InvalidArgument
from jupyter_modelhub.experiments.quality import QualityPoint, QualityTimeline
from jupyter_modelhub.monitoring import build_profile, compute_drift, drift_over_time
from jupyter_modelhub.monitoring.prediction_log import TimeRange
from jupyter_modelhub.monitoring.scrape import Scrape
from jupyter_modelhub.monitoring.service import DeploymentDrift
from jupyter_modelhub.widgets.drift import HEADER, DriftWidget
from jupyter_modelhub.widgets.monitor import MonitorWidget

START = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- drift -----------------------------------------------------------------------------------------
def deployment_drift(shift: float, n: int = 600, seed: int = 0) -> DeploymentDrift:
    """A deployment's drift where ``b`` moved by ``shift`` and ``a`` and ``c`` did not."""
    rng = np.random.default_rng(seed)
    reference = {"a": rng.normal(size=2000), "b": rng.normal(size=2000),
                 "c": rng.choice(["x", "y", "z"], size=2000)}  # fmt: skip
    profile = build_profile(reference)
    current = {"a": rng.normal(size=n), "b": rng.normal(size=n) + shift,
               "c": rng.choice(["x", "y", "z"], size=n)}  # fmt: skip
    stamps = np.datetime64("2026-11-22T12:00:00") + np.arange(n).astype("timedelta64[s]")
    timeline, _ = drift_over_time(profile, current, stamps, window="2m", step="1m")
    return DeploymentDrift(
        deployment="svc",
        ref="fraud@v0.0.1",
        window=TimeRange(),
        n_rows=n,
        first=START,
        last=START + dt.timedelta(seconds=n - 1),
        report=compute_drift(profile, current),
        timeline=timeline,
    )


class DriftReader:
    """``load(window)`` that drifts more at each call and records the windows asked for."""

    def __init__(self) -> None:
        self.windows: list[dt.timedelta | None] = []

    def __call__(self, window: dt.timedelta | None) -> DeploymentDrift:
        self.windows.append(window)
        return deployment_drift(shift=1.0 + len(self.windows), seed=len(self.windows))


@pytest.fixture
def reader() -> DriftReader:
    return DriftReader()


@pytest.fixture
def dashboard(reader: DriftReader) -> Iterator[DriftWidget]:
    widget = DriftWidget(reader)
    yield widget
    widget.close()


def test_the_drift_dashboard_has_its_parts(dashboard: DriftWidget, reader: DriftReader) -> None:
    assert isinstance(dashboard, widgets.VBox)
    controls, summary, header, features, histogram, timeline, quality = dashboard.children
    assert isinstance(features, widgets.Select)
    assert isinstance(histogram, go.FigureWidget) and isinstance(timeline, go.FigureWidget)
    assert isinstance(quality, go.FigureWidget) and not quality.data  # no outcomes asked for
    assert [c.description for c in controls.children[:2]] == ["Window", "Refresh"]
    assert controls.children[0].options == ("15m", "1h", "6h", "24h", "all")
    assert controls.children[0].value == "all" and reader.windows == [None]
    assert "Drift of deployment svc (fraud@v0.0.1): 600 requests" in summary.value
    assert "1 of 3 features drifted" in summary.value
    assert "feature" in header.value and "effect size" in header.value
    assert HEADER.split() == ["feature", "test", "score", "p-value", "effect", "size", "drifted"]


def test_the_feature_list_is_sorted_by_drift(dashboard: DriftWidget) -> None:
    labels = [label for label, _ in dashboard.features.options]
    assert next(column for _, column in dashboard.features.options) == "b"
    assert labels[0].split()[-1] == "DRIFTED"
    assert all(label.split()[-1] == "no" for label in labels[1:])
    assert dashboard.features.value == "b"


def test_the_selected_feature_drives_the_histogram(dashboard: DriftWidget) -> None:
    figure = dashboard.histogram
    assert [trace.name for trace in figure.data] == ["reference", "current"]
    assert figure.layout.title.text.startswith("b: reference vs current")
    dashboard.features.value = "c"
    assert figure.layout.title.text.startswith("c: reference vs current")
    assert list(figure.data[0].x) == ["x", "y", "z"]  # categories, from the bin counts
    assert sum(figure.data[1].y) == pytest.approx(1.0)


def test_drift_over_time_is_drawn(dashboard: DriftWidget) -> None:
    names = [trace.name for trace in dashboard.timeline.data]
    assert "drift share" in names and any(name.startswith("b (") for name in names)


def test_refresh_and_the_window_selector_reread(
    dashboard: DriftWidget, reader: DriftReader
) -> None:
    dashboard.features.value = "a"
    before = dashboard.drift
    dashboard.button.click()
    assert reader.windows == [None, None] and dashboard.refreshes == 2
    assert dashboard.drift is not before
    assert dashboard.features.value == "a"  # the selection survives a refresh
    assert dashboard.histogram.layout.title.text.startswith("a: ")

    dashboard.window.value = "1h"
    assert reader.windows[-1] == dt.timedelta(hours=1) and dashboard.refreshes == 3
    dashboard.window.value = "15m"
    assert reader.windows[-1] == dt.timedelta(minutes=15)


def test_a_failed_refresh_shows_why_and_keeps_the_last_drift(dashboard: DriftWidget) -> None:
    def empty(window: dt.timedelta | None) -> DeploymentDrift:
        raise InvalidArgument("Deployment 'svc' logged no prediction since 12:00.")

    before = dashboard.drift
    dashboard._load = empty
    dashboard.window.value = "15m"
    assert "could not refresh: Deployment &#x27;svc&#x27; logged no prediction" in (
        dashboard.status.value
    )
    assert dashboard.drift is before and dashboard.features.value == "b"


def test_a_custom_window_joins_the_selector(reader: DriftReader) -> None:
    widget = DriftWidget(reader, window=dt.timedelta(minutes=90))
    try:
        assert widget.window.value == "90m" and reader.windows == [dt.timedelta(minutes=90)]
        assert "90m" in widget.window.options
        assert repr(widget).startswith("Drift of deployment svc")  # text in a terminal
    finally:
        widget.close()


# -- quality over time -----------------------------------------------------------------------------
class QualityReader:
    """``Hub.quality`` of a deployment with an A/B test: a better challenger, 3 hourly windows;
    ``posted=False`` before any outcome was posted."""

    def __init__(self) -> None:
        self.windows: list[dt.timedelta | None] = []
        self.posted = True

    def __call__(self, window: dt.timedelta | None) -> QualityTimeline:
        self.windows.append(window)
        if not self.posted:
            raise InvalidArgument("No outcome was posted to deployment 'svc' yet.")
        points = tuple(
            QualityPoint(
                START + dt.timedelta(hours=h), variant, 100, mean, mean - 0.05, mean + 0.05
            )
            for h in range(3)
            for variant, mean in (("champion", 0.30), ("challenger", 0.42))
        )
        return QualityTimeline(step_seconds=3600.0, metric="rate", points=points)


def test_the_quality_over_time_is_drawn_per_variant_and_follows_the_window(
    reader: DriftReader,
) -> None:
    quality = QualityReader()
    widget = DriftWidget(reader, quality=quality)
    try:
        figure = widget.quality
        assert [trace.name for trace in figure.data] == ["champion", "challenger"]
        assert list(figure.data[1].y) == [0.42, 0.42, 0.42]
        assert list(figure.data[1].error_y.array) == pytest.approx([0.05] * 3)
        assert figure.layout.title.text.startswith("Quality over time: outcome rate per 3600 s")
        widget.window.value = "6h"
        assert quality.windows == [None, dt.timedelta(hours=6)]
    finally:
        widget.close()


def test_before_any_outcome_the_quality_figure_says_why_it_is_empty(reader: DriftReader) -> None:
    quality = QualityReader()
    quality.posted = False
    widget = DriftWidget(reader, quality=quality)
    try:
        assert not widget.quality.data
        assert "No outcome was posted to deployment 'svc' yet" in widget.quality.layout.title.text
        assert "1 of 3 features drifted" in widget.summary.value  # the drift is drawn all the same
    finally:
        widget.close()


# -- monitor ---------------------------------------------------------------------------------------
def scrape_at(t: float, requests: int, errors: int = 0) -> Scrape:
    """What a replica's /metrics says at time ``t`` after ``requests`` predictions."""
    base = (("deployment", "svc"), ("model", "fraud"), ("variant", "champion"),
            ("version", "v0.0.1"))  # fmt: skip

    def labels(**extra: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((*base, *extra.items())))

    samples = {
        ("modelhub_requests_total", labels(endpoint="v2_infer", code="2xx")): requests - errors,
        ("modelhub_requests_total", labels(endpoint="v2_infer", code="5xx")): errors,
        ("modelhub_batch_size_sum", labels()): 2.0 * requests,
        ("modelhub_batch_size_count", labels()): float(requests),
    }
    for le, share in (("0.005", 0.5), ("0.01", 0.9), ("0.1", 1.0), ("+Inf", 1.0)):
        key = ("modelhub_request_duration_seconds_bucket", labels(endpoint="v2_infer", le=le))
        samples[key] = share * requests
    return Scrape(t, samples)


class MetricsReader:
    """A deployment serving 10 requests per second, one error in ten."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def __call__(self) -> Scrape:
        if self.fail:
            raise BackendError("No replica of deployment 'svc' answered on its metrics port.")
        self.calls += 1
        return scrape_at(float(self.calls), 10 * self.calls, self.calls)


def status() -> DeploymentStatus:
    replica = ReplicaStatus(0, 1, 8080, 8081, "v0.0.1", "running", "ready", None, 1.0, 0)
    return DeploymentStatus("svc", "local", "fraud", "fraud@v0.0.1", "http://127.0.0.1:8080",
                            "v0.0.1", "v0.0.1", False, 1, 1, "running", (replica,))  # fmt: skip


@pytest.fixture
def metrics() -> MetricsReader:
    return MetricsReader()


def test_the_monitor_reads_rates_per_variant(metrics: MetricsReader) -> None:
    widget = MonitorWidget("svc", metrics, status, interval=None)
    try:
        summary, figure, controls = widget.children
        assert isinstance(figure, go.FigureWidget) and controls.children[0].description == "Refresh"
        assert widget.points == [] and "first rates at the next reading" in widget.status.value
        widget.button.click()
        (point,) = widget.points
        assert (point.variant, point.requests_per_second, point.error_rate) == ("champion", 10, 0.1)
        assert point.batch_size == 2.0 and point.p50_latency == pytest.approx(0.005)
        assert "Health of deployment svc" in summary.value and "replica 0: ready" in summary.value
        signals = {trace.meta["signal"] for trace in figure.data}
        assert signals == {"requests_per_second", "p50_latency", "p99_latency", "error_rate",
                           "batch_size"}  # fmt: skip
        assert repr(widget) == "champion: 10 req/s"
    finally:
        widget.close()


def test_the_monitor_keeps_a_bounded_history(metrics: MetricsReader) -> None:
    widget = MonitorWidget("svc", metrics, interval=None, history=3)
    try:
        for _ in range(6):
            widget.refresh()
        assert metrics.calls == 7 and len(widget.history) == 3
        assert [p.end for p in widget.points] == [5.0, 6.0, 7.0]
        assert len(widget.figure.data[0].x) == 3
    finally:
        widget.close()


def test_a_failed_reading_shows_why(metrics: MetricsReader) -> None:
    widget = MonitorWidget("svc", metrics, interval=None)
    try:
        metrics.fail = True
        widget.refresh()
        assert "could not read the metrics: No replica of deployment" in widget.status.value
    finally:
        widget.close()


def test_the_monitor_timer_in_a_thread_stops_when_closed(metrics: MetricsReader) -> None:
    widget = MonitorWidget("svc", metrics, interval=0.01)
    until(lambda: len(widget.points) >= 3)
    assert widget.auto_refreshing and metrics.calls >= 4
    widget.close()
    assert not widget.auto_refreshing
    calls = metrics.calls
    assert widget._thread is not None and not widget._thread.is_alive()
    assert metrics.calls == calls


async def test_the_monitor_timer_on_the_event_loop_stops_when_closed(
    metrics: MetricsReader,
) -> None:
    widget = MonitorWidget("svc", metrics, interval=0.01)
    assert widget._task is not None and widget._thread is None
    deadline = time.monotonic() + 10
    while metrics.calls < 4:
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)
    widget.close()
    with pytest.raises(asyncio.CancelledError):
        await widget._task
    assert not widget.auto_refreshing
    calls = metrics.calls
    await asyncio.sleep(0.05)
    assert metrics.calls == calls
