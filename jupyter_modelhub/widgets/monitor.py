"""``MonitorWidget``: a deployment's live health in a notebook.

Every ``interval`` seconds while it is open, it reads the replicas' ``/metrics`` (one
``Hub.scrape_metrics`` call), computes each variant's requests/s, p50/p99 latency, error rate and
batch size since the previous reading, and redraws the figure of
:func:`~jupyter_modelhub.monitoring.figures.monitor_figure` over the last ``history`` readings
(older ones are dropped). The timer is a task on the kernel's running asyncio loop (the reading
itself runs in a worker thread) or, without a running loop, a daemon thread; either stops
when the widget is closed.
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime

import ipywidgets as widgets
import plotly.graph_objects as go

from ..deploy.records import DeploymentStatus
from ..errors import ModelHubError
from ..monitoring.figures import monitor_figure
from ..monitoring.scrape import HealthPoint, Scrape, health_between
from ..views import monitor_table


class MonitorWidget(widgets.VBox):
    """Live health of deployment ``name``.

    Args:
        name: the deployment's name (titles, and which series to show).
        scrape: one reading of the deployment's metrics (``Hub.scrape_metrics``).
        status: the deployment's status, for replica health (``Hub.deployment``); optional.
        interval: seconds between readings while open; ``None``: only on Refresh.
        history: how many readings to keep (the figure's span is ``history * interval``).
    """

    def __init__(
        self,
        name: str,
        scrape: Callable[[], Scrape],
        status: Callable[[], DeploymentStatus] | None = None,
        *,
        interval: float | None = 5.0,
        history: int = 360,
    ) -> None:
        if history < 1:
            raise ValueError(f"history must be at least 1, not {history!r}")
        self.name = name
        self._scrape = scrape
        self._status = status
        self.history: deque[list[HealthPoint]] = deque(maxlen=history)
        self.readings = 0
        self._last: Scrape | None = None
        self._lock = threading.Lock()
        self.summary = widgets.HTML()
        self.figure = go.FigureWidget()
        self.button = widgets.Button(description="Refresh", icon="refresh", tooltip="Read now")
        self.status = widgets.HTML()
        self.controls = widgets.HBox([self.button, self.status])
        super().__init__([self.summary, self.figure, self.controls])
        self.button.on_click(lambda _: self.refresh())
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.refresh()
        if interval is not None:
            self._start_timer(interval)

    @property
    def points(self) -> list[HealthPoint]:
        """Every health point kept, oldest first."""
        return [p for reading in self.history for p in reading]

    # -- reading ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the metrics now and redraw; a ``ModelHubError`` shows in the status line."""
        try:
            scrape = self._scrape()
            status = self._status() if self._status is not None else None
        except ModelHubError as exc:
            self._error(exc)
            return
        self._show(scrape, status)

    def _show(self, scrape: Scrape, status: DeploymentStatus | None) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            latest: list[HealthPoint] = []
            if self._last is not None:
                latest = [
                    p for p in health_between(self._last, scrape) if p.deployment in (self.name, "")
                ]
                if latest:
                    self.history.append(latest)
            self._last = scrape
            self.readings += 1
            if status is not None:
                self.summary.value = monitor_table(self.name, latest, status)._repr_html_()
            built = monitor_figure(self.points, title=f"Health of {self.name}")
            with self.figure.batch_update():
                self.figure.data = ()
                self.figure.add_traces(list(built.data))
                self.figure.layout = built.layout
            waiting = "" if self.history else ", first rates at the next reading"
            self.status.value = f"<small>read at {datetime.now():%H:%M:%S}{waiting}</small>"

    def _error(self, exc: Exception) -> None:
        self.status.value = f"<small>could not read the metrics: {html.escape(str(exc))}</small>"

    # -- the timer ----------------------------------------------------------------------------
    @property
    def auto_refreshing(self) -> bool:
        """Whether a timer is reading the metrics."""
        if self._task is not None:
            return not self._task.done()
        return self._thread is not None and self._thread.is_alive()

    def _start_timer(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"interval must be positive, not {seconds!r}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._thread = threading.Thread(
                target=self._tick_in_thread, args=(seconds,), name="modelhub-monitor", daemon=True
            )
            self._thread.start()
        else:
            self._task = loop.create_task(self._tick_on_loop(seconds))

    def _read(self) -> tuple[Scrape, DeploymentStatus | None]:
        return self._scrape(), self._status() if self._status is not None else None

    async def _tick_on_loop(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            await asyncio.sleep(seconds)
            if self._closed.is_set():
                return
            try:
                scrape, status = await loop.run_in_executor(None, self._read)
            except ModelHubError as exc:
                self._error(exc)
                continue
            self._show(scrape, status)

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
        for child in (self.summary, self.figure, self.button, self.status, self.controls):
            child.close()
        super().close()

    def __repr__(self) -> str:
        latest = self.history[-1] if self.history else []
        return "\n".join(f"{p.variant or '-'}: {p.requests_per_second:.3g} req/s" for p in latest)
