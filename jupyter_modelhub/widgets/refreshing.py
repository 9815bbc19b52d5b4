"""``RefreshingWidget``: the part every live dashboard shares.

A ``VBox`` of a summary (HTML), a plotly ``FigureWidget`` and a Refresh button with a status
line. Subclasses say how to read their data (``_read``, a blocking Hub call) and how to draw it
(``_show``); this class refreshes on a click, or every ``seconds`` on a timer: a task on the
kernel's running asyncio loop (the reading itself runs in a worker thread), or, without a
running loop, a daemon thread. Either stops when the widget is closed, and a failed reading
shows its reason in the status line and keeps what was drawn.
"""

from __future__ import annotations

import asyncio
import html
import threading
from datetime import datetime
from typing import Any, Generic, TypeVar

import ipywidgets as widgets
import plotly.graph_objects as go

from ..errors import ModelHubError

T = TypeVar("T")


class RefreshingWidget(widgets.VBox, Generic[T]):
    """A summary, a figure and a Refresh button over data read by ``_read``."""

    thread_name = "modelhub-widget"
    failure = "could not refresh"

    def __init__(self, *, button_tooltip: str = "Read again") -> None:
        # first: Widget.__del__ calls close() even when a subclass's __init__ failed
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.summary = widgets.HTML()
        self.figure = go.FigureWidget()
        self.button = widgets.Button(description="Refresh", icon="refresh", tooltip=button_tooltip)
        self.status = widgets.HTML()
        self.controls = widgets.HBox([self.button, self.status])
        self.button.on_click(lambda _: self.refresh())
        super().__init__([self.summary, self.figure, self.controls])

    # -- what subclasses say ------------------------------------------------------------------
    def _read(self) -> T:
        """Read the data (blocking; may run in a worker thread)."""
        raise NotImplementedError

    def _show(self, data: T) -> None:
        """Draw ``data`` (on the caller's thread)."""
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read now and redraw; a ``ModelHubError`` shows in the status line."""
        try:
            data = self._read()
        except ModelHubError as exc:
            self._error(exc)
            return
        self._show(data)

    def _error(self, exc: Exception) -> None:
        self.status.value = f"<small>{self.failure}: {html.escape(str(exc))}</small>"

    def _read_at(self, note: str = "") -> None:
        self.status.value = f"<small>read at {datetime.now():%H:%M:%S}{note}</small>"

    def _draw(self, built: go.Figure) -> None:
        """Replace the figure's traces and layout with ``built``'s, in one update."""
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(list(built.data))
            self.figure.layout = built.layout

    # -- the timer ----------------------------------------------------------------------------
    @property
    def auto_refreshing(self) -> bool:
        """Whether a timer is re-reading the data."""
        if self._task is not None:
            return not self._task.done()
        return self._thread is not None and self._thread.is_alive()

    def _start_timer(self, seconds: float, what: str = "refresh_seconds") -> None:
        if seconds <= 0:
            raise ValueError(f"{what} must be positive, not {seconds!r}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._thread = threading.Thread(
                target=self._tick_in_thread, args=(seconds,), name=self.thread_name, daemon=True
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
                data = await loop.run_in_executor(None, self._read)
            except ModelHubError as exc:
                self._error(exc)
                continue
            if not self._closed.is_set():
                self._show(data)

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
            child: Any = getattr(self, name, None)
            if child is not None:
                child.close()
        super().close()
