"""``DriftWidget``: a deployment's drift in a notebook, re-read in place.

A ``VBox`` of: a summary (verdict, window, output drift), the feature table sorted by drift as a
selectable list (one line per feature: test, score, p-value, effect size, drifted), the
reference vs current histogram of the selected feature (from the engine's bin counts, never
rows), drift over time, the model's quality over time where outcomes were posted back, and
controls: a window selector (15m, 1h, 6h, 24h, all) and Refresh. Figures come from
:mod:`jupyter_modelhub.monitoring.figures` and :mod:`.abfigure`; this module only wires them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from datetime import datetime, timedelta

import ipywidgets as widgets
import plotly.graph_objects as go

from ..errors import ModelHubError
from ..experiments.quality import QualityTimeline
from ..monitoring.figures import drift_over_time_figure, histogram_figure
from ..monitoring.records import FeatureDrift
from ..monitoring.service import DeploymentDrift
from ..views import deployment_drift_table, drift_verdict
from .abfigure import quality_figure

#: ``load(window)``: the drift of the last ``window`` (None: everything logged)
Loader = Callable[[timedelta | None], DeploymentDrift]
#: ``quality(window)``: the outcomes' mean per window and variant over the last ``window``
QualityLoader = Callable[[timedelta | None], QualityTimeline]

WINDOWS: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "all": None,
}
ROW_FORMAT = "{:<24} {:<13} {:>10} {:>9} {:>12}  {}"
_STYLE = (
    "<style>.jp-ModelHub-drift-features select, .jp-ModelHub-drift-header pre "
    "{font-family: var(--jp-code-font-family, monospace); font-size: 12px;}</style>"
)


def window_label(window: timedelta | None) -> str:
    """The selector's label of a window: one of ``WINDOWS``, else a duration (``90m``)."""
    for label, value in WINDOWS.items():
        if value == window:
            return label
    assert window is not None
    seconds = window.total_seconds()
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def feature_row(feature: FeatureDrift) -> str:
    """One line of the feature list (the columns of ``ROW_FORMAT``'s header)."""
    p_value = feature.p_value_adjusted if feature.p_value_adjusted is not None else feature.p_value
    return ROW_FORMAT.format(
        feature.column[:24],
        feature.test,
        _number(feature.statistic),
        _number(p_value, 3),
        _number(feature.effect_size, 3),
        "DRIFTED" if feature.drifted else "no",
    )


HEADER = ROW_FORMAT.format("feature", "test", "score", "p-value", "effect size", "drifted")


class DriftWidget(widgets.VBox):
    """The drift dashboard of one deployment.

    Args:
        load: ``load(window)`` returns the deployment's drift (one ``Hub.drift`` call).
        window: the window read first (None: everything logged).
        initial: a drift already read for ``window`` (else ``load`` is called now).
        quality: ``quality(window)`` returns the quality over time (one ``Hub.quality``
            call); without it, or before any outcome is posted, that figure says why it is
            empty.
    """

    def __init__(
        self,
        load: Loader,
        *,
        window: timedelta | None = None,
        initial: DeploymentDrift | None = None,
        quality: QualityLoader | None = None,
    ) -> None:
        self._load = load
        self._quality = quality
        self._updating = False
        options = dict(WINDOWS)
        options.setdefault(window_label(window), window)
        self.refreshes = 0
        self.summary = widgets.HTML()
        self.header = widgets.HTML(f"{_STYLE}<pre>{html.escape(HEADER)}</pre>")
        self.header.add_class("jp-ModelHub-drift-header")
        self.features = widgets.Select(options=[], rows=8, layout={"width": "100%"})
        self.features.add_class("jp-ModelHub-drift-features")
        self.histogram = go.FigureWidget()
        self.timeline = go.FigureWidget()
        self.quality = go.FigureWidget()
        self.window = widgets.Dropdown(
            options=list(options), value=window_label(window), description="Window"
        )
        self._windows = options
        self.button = widgets.Button(description="Refresh", icon="refresh", tooltip="Re-read")
        self.status = widgets.HTML()
        self.controls = widgets.HBox([self.window, self.button, self.status])
        super().__init__(
            [self.controls, self.summary, self.header, self.features, self.histogram,
             self.timeline, self.quality]
        )  # fmt: skip
        self.drift = initial if initial is not None else load(window)
        self._show(self.drift)
        self._show_quality(window)
        self.features.observe(self._selected, names="value")
        self.window.observe(lambda _: self.refresh(), names="value")
        self.button.on_click(lambda _: self.refresh())

    # -- reading ------------------------------------------------------------------------------
    @property
    def selected_window(self) -> timedelta | None:
        return self._windows[self.window.value]

    def refresh(self) -> None:
        """Read the drift of the selected window again and redraw; a ``ModelHubError`` (an
        empty window...) shows in the status line and the last drift stays."""
        try:
            drift = self._load(self.selected_window)
        except ModelHubError as exc:
            self.status.value = f"<small>could not refresh: {html.escape(str(exc))}</small>"
            return
        self._show(drift)
        self._show_quality(self.selected_window)

    def _show_quality(self, window: timedelta | None) -> None:
        if self._quality is None:
            self._draw(self.quality, None, "Quality over time: not asked for")
            return
        try:
            timeline = self._quality(window)
        except ModelHubError as exc:  # no outcome posted yet: say so where the figure goes
            self._draw(self.quality, None, f"Quality over time: {exc.message}")
            return
        self._draw(self.quality, quality_figure(timeline))

    def _show(self, drift: DeploymentDrift) -> None:
        self.drift = drift
        table = deployment_drift_table(drift)
        title = table.title.split("\n")[0]
        notes = "".join(
            f"<br><small>{html.escape(line)}</small>"
            for line in table.notes
            if not line.startswith(("drift over time", "  "))  # the figure shows those
        )
        self.summary.value = (
            f"<b>{html.escape(title)}</b><br>{html.escape(drift_verdict(drift.report))}{notes}"
        )
        previous = self.features.value
        options = [(feature_row(f), f.column) for f in drift.report.features]
        columns = [column for _, column in options]
        self._updating = True  # one histogram drawn below, not one per trait change
        try:
            self.features.options = options
            self.features.value = (
                previous if previous in columns else (columns[0] if columns else None)
            )
        finally:
            self._updating = False
        self._draw_histogram()
        self._draw(
            self.timeline,
            None if drift.timeline is None else drift_over_time_figure(drift.timeline),
            "no drift over time: pass --over-time",
        )
        self.refreshes += 1
        self.status.value = f"<small>read at {datetime.now():%H:%M:%S}</small>"

    # -- the selected feature -----------------------------------------------------------------
    def _selected(self, change: dict[str, object]) -> None:
        if not self._updating:
            self._draw_histogram()

    def _draw_histogram(self) -> None:
        column = self.features.value
        feature = None
        if column is not None:
            feature = next((f for f in self.drift.report.features if f.column == column), None)
        if feature is None or feature.histogram is None:
            self._draw(self.histogram, None, "select a feature to see its distribution")
            return
        self._draw(self.histogram, histogram_figure(feature))

    @staticmethod
    def _draw(target: go.FigureWidget, figure: go.Figure | None, empty: str = "") -> None:
        with target.batch_update():
            target.data = ()
            if figure is not None:
                target.add_traces(list(figure.data))
                target.layout = figure.layout
            else:  # a title line, no empty axes
                target.layout = go.Layout(
                    title=empty, height=60, margin={"t": 30, "b": 0},
                    xaxis={"visible": False}, yaxis={"visible": False},
                )  # fmt: skip

    def close(self) -> None:
        """Close the widget and its children (also after a failed ``__init__``: ipywidgets
        calls ``close`` from ``__del__``)."""
        for name in (
            "summary", "header", "features", "histogram", "timeline", "quality", "window",
            "button", "status", "controls",
        ):  # fmt: skip
            child = getattr(self, name, None)
            if child is not None:
                child.close()
        super().close()

    def __repr__(self) -> str:
        """Where a widget cannot be drawn (a terminal), the report as text."""
        return deployment_drift_table(self.drift).to_text()
