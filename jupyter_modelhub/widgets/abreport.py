"""``ABReportWidget``: the A/B report in a notebook, refreshed on demand or on a timer.

A ``VBox`` of an HTML summary table (the same view as ``%modelhub ab report`` in a terminal),
a plotly ``FigureWidget`` (see ``abfigure``), and a Refresh button with a status line. With
``refresh_seconds`` it re-reads the report on its own: a task on the kernel's running asyncio
loop (the Hub call itself runs in a worker thread), or, without a running loop, a daemon
thread. Either stops when the widget is closed.
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Callable
from datetime import datetime

import ipywidgets as widgets
import plotly.graph_objects as go

from ..errors import ModelHubError
from ..experiments.analysis import ExperimentAnalysis
from ..views import ab_report_table
from .abfigure import ab_report_figure, p_value_points

Loader = Callable[[], ExperimentAnalysis]


class ABReportWidget(widgets.VBox):
    """An A/B report that re-reads its data with ``load`` (one ``Hub.ab_report`` call).

    Args:
        load: returns the current analysis; called by ``refresh``.
        initial: an analysis already read (else ``load`` is called once now).
        refresh_seconds: re-read every so many seconds until ``close()``; ``None``: only on
            a click of Refresh.
    """

    def __init__(
        self,
        load: Loader,
        *,
        initial: ExperimentAnalysis | None = None,
        refresh_seconds: float | None = None,
    ) -> None:
        # first: Widget.__del__ calls close() even when __init__ failed (load() raising)
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._load = load
        self.analysis = initial if initial is not None else load()
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.refreshes = 0
        self.summary = widgets.HTML()
        self.figure = go.FigureWidget()
        self.button = widgets.Button(description="Refresh", icon="refresh", tooltip="Re-read")
        self.status = widgets.HTML()
        self.button.on_click(lambda _: self.refresh())
        self.controls = widgets.HBox([self.button, self.status])
        super().__init__([self.summary, self.figure, self.controls])
        self._show(self.analysis)
        if refresh_seconds is not None:
            self._start_timer(refresh_seconds)

    # -- reading ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the report again and redraw; a ``ModelHubError`` shows in the status line."""
        try:
            analysis = self._load()
        except ModelHubError as exc:
            self._error(exc)
            return
        self._show(analysis)

    def _show(self, analysis: ExperimentAnalysis) -> None:
        self.analysis = analysis
        for challenger, point in p_value_points(analysis).items():
            seen = self.history.setdefault(challenger, [])
            if not seen or seen[-1] != point:
                seen.append(point)
        self.summary.value = ab_report_table(analysis)._repr_html_()
        built = ab_report_figure(analysis, self.history)
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(list(built.data))
            self.figure.layout = built.layout
        self.refreshes += 1
        self.status.value = f"<small>read at {datetime.now():%H:%M:%S}</small>"

    def _error(self, exc: Exception) -> None:
        self.status.value = f"<small>could not refresh: {html.escape(str(exc))}</small>"

    # -- the timer --------------------------------------------------------------------------
    @property
    def auto_refreshing(self) -> bool:
        """Whether a timer is re-reading the report."""
        if self._task is not None:
            return not self._task.done()
        return self._thread is not None and self._thread.is_alive()

    def _start_timer(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"refresh_seconds must be positive, not {seconds!r}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._thread = threading.Thread(
                target=self._tick_in_thread, args=(seconds,), name="ab-report", daemon=True
            )
            self._thread.start()
        else:
            self._task = loop.create_task(self._tick_on_loop(seconds))

    async def _tick_on_loop(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            await asyncio.sleep(seconds)
            if self._closed.is_set():
                return
            try:
                analysis = await loop.run_in_executor(None, self._load)
            except ModelHubError as exc:
                self._error(exc)
                continue
            if not self._closed.is_set():
                self._show(analysis)

    def _tick_in_thread(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            self.refresh()

    def close(self) -> None:
        """Stop the timer, then close the widget and its children."""
        self._closed.set()
        if self._task is not None:
            self._task.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        for name in ("summary", "figure", "button", "status", "controls"):
            child = getattr(self, name, None)
            if child is not None:
                child.close()
        super().close()

    def __repr__(self) -> str:
        """Where a widget cannot be drawn (a terminal), the report as text."""
        return ab_report_table(self.analysis).to_text()
