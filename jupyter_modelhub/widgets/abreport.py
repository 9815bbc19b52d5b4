"""``ABReportWidget``: the A/B report in a notebook, refreshed on demand or on a timer.

An HTML summary table (the same view as ``%modelhub ab report`` in a terminal), a plotly
figure (see ``abfigure``), and a Refresh button with a status line; with ``refresh_seconds``
it re-reads the report on its own until closed (``refreshing.RefreshingWidget``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..experiments.analysis import ExperimentAnalysis
from ..views import ab_report_table
from .abfigure import ab_report_figure, p_value_points
from .refreshing import RefreshingWidget

Loader = Callable[[], ExperimentAnalysis]


class ABReportWidget(RefreshingWidget[ExperimentAnalysis]):
    """An A/B report that re-reads its data with ``load`` (one ``Hub.ab_report`` call).

    Args:
        load: returns the current analysis; called by ``refresh``.
        initial: an analysis already read (else ``load`` is called once now).
        refresh_seconds: re-read every so many seconds until ``close()``; ``None``: only on
            a click of Refresh.
    """

    thread_name = "ab-report"

    def __init__(
        self,
        load: Loader,
        *,
        initial: ExperimentAnalysis | None = None,
        refresh_seconds: float | None = None,
    ) -> None:
        super().__init__(button_tooltip="Re-read")
        self._load = load
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.refreshes = 0
        self.analysis = initial if initial is not None else load()
        self._show(self.analysis)
        if refresh_seconds is not None:
            self._start_timer(refresh_seconds)

    def _read(self) -> ExperimentAnalysis:
        return self._load()

    def _show(self, analysis: ExperimentAnalysis) -> None:
        self.analysis = analysis
        for challenger, point in p_value_points(analysis).items():
            seen = self.history.setdefault(challenger, [])
            if not seen or seen[-1] != point:
                seen.append(point)
        self.summary.value = ab_report_table(analysis)._repr_html_()
        self._draw(ab_report_figure(analysis, self.history))
        self.refreshes += 1
        self._read_at()

    def __repr__(self) -> str:
        """Where a widget cannot be drawn (a terminal), the report as text."""
        return ab_report_table(self.analysis).to_text()
