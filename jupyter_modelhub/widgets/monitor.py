"""``MonitorWidget``: a deployment's live health in a notebook.

Every ``interval`` seconds while it is open, it reads the replicas' ``/metrics`` (one
``Hub.scrape_metrics`` call), computes each variant's requests/s, p50/p99 latency, error rate and
batch size since the previous reading, and redraws the figure of
:func:`~jupyter_modelhub.monitoring.figures.monitor_figure` over the last ``history`` readings
(older ones are dropped); the timer stops when the widget is closed
(``refreshing.RefreshingWidget``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ..deploy.records import DeploymentStatus
from ..monitoring.figures import monitor_figure
from ..monitoring.scrape import HealthPoint, Scrape, health_between
from ..views import monitor_table
from .refreshing import RefreshingWidget


class MonitorWidget(RefreshingWidget[tuple[Scrape, "DeploymentStatus | None"]]):
    """Live health of deployment ``name``.

    Args:
        name: the deployment's name (titles, and which series to show).
        scrape: one reading of the deployment's metrics (``Hub.scrape_metrics``).
        status: the deployment's status, for replica health (``Hub.deployment``); optional.
        interval: seconds between readings while open; ``None``: only on Refresh.
        history: how many readings to keep (the figure's span is ``history * interval``).
    """

    thread_name = "modelhub-monitor"
    failure = "could not read the metrics"

    def __init__(
        self,
        name: str,
        scrape: Callable[[], Scrape],
        status: Callable[[], DeploymentStatus] | None = None,
        *,
        interval: float | None = 5.0,
        history: int = 360,
    ) -> None:
        super().__init__(button_tooltip="Read now")
        if history < 1:
            raise ValueError(f"history must be at least 1, not {history!r}")
        self.name = name
        self._scrape = scrape
        self._status = status
        self.history: deque[list[HealthPoint]] = deque(maxlen=history)
        self.readings = 0
        self._last: Scrape | None = None
        self._lock = threading.Lock()
        self.refresh()
        if interval is not None:
            self._start_timer(interval, "interval")

    @property
    def points(self) -> list[HealthPoint]:
        """Every health point kept, oldest first."""
        return [p for reading in self.history for p in reading]

    def _read(self) -> tuple[Scrape, DeploymentStatus | None]:
        return self._scrape(), self._status() if self._status is not None else None

    def _show(self, reading: tuple[Scrape, DeploymentStatus | None]) -> None:
        scrape, status = reading
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
            self._draw(monitor_figure(self.points, title=f"Health of {self.name}"))
            self._read_at("" if self.history else ", first rates at the next reading")

    def __repr__(self) -> str:
        latest = self.history[-1] if self.history else []
        return "\n".join(f"{p.variant or '-'}: {p.requests_per_second:.3g} req/s" for p in latest)
