"""The prediction log: a sample of requests and their predictions, as Parquet chunks.

The request path only appends references to arrays it already has to an in-memory list (no
copy, no I/O). A background thread turns the buffer into an Arrow table and writes it as one
Parquet file every ``flush_rows`` rows or ``flush_seconds`` seconds, and once more at
``close()``. Files appear atomically (written under a temporary name, then renamed), so a
reader that globs ``*.parquet`` never sees half a file. Columns:

``timestamp`` (UTC, µs), ``request_id``, ``model``, ``model_version``, ``variant`` (null
unless the server was given one), ``key`` (the request's sticky A/B key, if any), one column
per feature (named like the signature's
features; a feature whose name collides with these is stored as ``feature:NAME``), and
``prediction`` (the ``predict`` output).

Sampling: each request is logged with probability ``sample_rate``, and at most
``max_rows_per_second`` rows are logged per second; rows beyond the buffer's bound are dropped
and counted, never waited for.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from .features import FeatureBatch, FeatureSchema

log = logging.getLogger(__name__)
E = TypeVar("E")

RESERVED = (
    "timestamp",
    "request_id",
    "model",
    "model_version",
    "variant",
    "key",
    "prediction",
)


@dataclass
class _Entry:
    request_id: str
    batch: FeatureBatch
    prediction: np.ndarray
    key: str | None


class ChunkedLog(Generic[E]):
    """A buffer of entries written as Parquet chunks by a background thread.

    ``append`` never does I/O: entries are kept in memory and written every ``flush_rows``
    rows or ``flush_seconds`` seconds, and at ``close()``. Rows beyond ``max_buffer_rows`` are
    dropped and counted, never waited for. Files appear atomically (written under a temporary
    name, then renamed), so a reader that globs ``*.parquet`` never sees half a file.
    Subclasses say how entries become a table (``_table``).
    """

    thread_name = "modelhub-log"

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        flush_rows: int = 10_000,
        flush_seconds: float = 10.0,
        max_buffer_rows: int | None = None,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_rows = max(1, flush_rows)
        self.flush_seconds = flush_seconds
        self.max_buffer_rows = max_buffer_rows or max(10 * self.flush_rows, 100_000)
        self.on_written = on_written
        self.on_dropped = on_dropped
        self._lock = threading.Lock()
        self._buffer: list[tuple[float, E, int]] = []
        self._buffered_rows = 0
        self._sequence = 0
        self._token = secrets.token_hex(3)  # several logs of one process share a folder
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def append(self, entry: E, rows: int, now: float | None = None) -> bool:
        """Buffer ``entry`` (``rows`` rows); False when it was dropped (buffer full, closing)."""
        now = time.time() if now is None else now
        with self._lock:
            dropped = self._buffered_rows + rows > self.max_buffer_rows or self._closing
            if not dropped:
                self._buffer.append((now, entry, rows))
                self._buffered_rows += rows
                full = self._buffered_rows >= self.flush_rows
        if dropped:
            if self.on_dropped:
                self.on_dropped(rows)
            return False
        if full:
            self._wake.set()
        return True

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            closing = self._closing
            self.flush()
            if closing:
                return

    def flush(self) -> Path | None:
        """Write what is buffered as one Parquet file now; the file's path, or None if empty."""
        with self._lock:
            buffered, self._buffer, self._buffered_rows = self._buffer, [], 0
        if not buffered:
            return None
        rows = sum(n for _, _, n in buffered)
        try:
            path = self._write(buffered)
        except Exception:
            log.exception("Could not write %d rows to the log in %s", rows, self.folder)
            if self.on_dropped:
                self.on_dropped(rows)
            return None
        if self.on_written:
            self.on_written(rows)
        return path

    def _table(self, buffered: list[tuple[float, E, int]]) -> Any:
        raise NotImplementedError

    def _write(self, buffered: list[tuple[float, E, int]]) -> Path:
        import pyarrow.parquet as pq

        table = self._table(buffered)
        self._sequence += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(buffered[0][0]))
        name = f"{stamp}-{os.getpid()}-{self._token}-{self._sequence:06d}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(table, tmp)
        final = self.folder / name
        os.replace(tmp, final)
        return final

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered and stop the thread (idempotent)."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._wake.set()
        self._thread.join(timeout)


class PredictionLog(ChunkedLog[_Entry]):
    """Buffers sampled predictions and writes them as Parquet chunks from a background thread."""

    thread_name = "modelhub-predlog"

    def __init__(
        self,
        folder: str | os.PathLike[str],
        schema: FeatureSchema,
        *,
        model: str,
        version: str,
        variant: str | None = None,
        sample_rate: float = 1.0,
        max_rows_per_second: float = 1000.0,
        flush_rows: int = 10_000,
        flush_seconds: float = 10.0,
        max_buffer_rows: int | None = None,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        super().__init__(
            folder,
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            max_buffer_rows=max_buffer_rows,
            on_written=on_written,
            on_dropped=on_dropped,
        )
        self.schema = schema
        self.model = model
        self.version = version
        self.variant = variant
        self.sample_rate = sample_rate
        self.max_rows_per_second = max_rows_per_second
        self._columns = [f"feature:{n}" if n in RESERVED else n for n in schema.names]
        self._rate_lock = threading.Lock()
        self._second = 0
        self._rows_this_second = 0
        self._random = random.Random()

    # -- request path -------------------------------------------------------------------------------
    def record(
        self,
        request_id: str,
        batch: FeatureBatch,
        prediction: np.ndarray,
        key: str | None = None,
    ) -> bool:
        """Maybe keep this request's rows for the log; never blocks on I/O. True if kept."""
        rows = batch.n_rows
        if self.sample_rate < 1.0 and self._random.random() >= self.sample_rate:
            return False
        now = time.time()
        with self._rate_lock:
            second = int(now)
            if second != self._second:
                self._second, self._rows_this_second = second, 0
            if self._rows_this_second + rows > self.max_rows_per_second:
                return False
            self._rows_this_second += rows
        return self.append(_Entry(request_id, batch, prediction, key), rows, now)

    def _table(self, buffered: list[tuple[float, _Entry, int]]) -> Any:
        import pyarrow as pa

        counts = [n for _, _, n in buffered]
        total = sum(counts)
        entries = [e for _, e, _ in buffered]
        times = np.repeat(
            np.array([int(t * 1_000_000) for t, _, _ in buffered], dtype=np.int64), counts
        )
        ids = np.repeat(np.array([e.request_id for e in entries], dtype=object), counts)
        keys = np.repeat(np.array([e.key for e in entries], dtype=object), counts)
        arrays: dict[str, Any] = {
            "timestamp": pa.array(times, type=pa.timestamp("us", tz="UTC")),
            "request_id": pa.array(ids, type=pa.string()),
            "model": pa.array([self.model] * total, type=pa.string()),
            "model_version": pa.array([self.version] * total, type=pa.string()),
            "variant": pa.array([self.variant] * total, type=pa.string()),
            "key": pa.array(keys, type=pa.string()),
        }
        batch = FeatureBatch.concat([e.batch for e in entries])
        for j, (name, feature) in enumerate(zip(self._columns, self.schema.features, strict=True)):
            arrays[name] = _arrow(batch.column(j), feature.kind == "str")
        arrays["prediction"] = _arrow(np.concatenate([e.prediction for e in entries]), False)
        return pa.table(arrays)


def _arrow(values: np.ndarray, text: bool) -> Any:
    import pyarrow as pa

    if text or values.dtype.kind in "OU":
        return pa.array([None if v is None else str(v) for v in values.tolist()], type=pa.string())
    if values.ndim > 1:
        return pa.array(list(values))  # e.g. multi-output regression: one list per row
    return pa.array(values)
