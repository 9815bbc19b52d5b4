"""Reading a deployment's prediction log (Parquet chunks) for drift: a time window, some columns.

The model server writes ``predictions/*.parquet`` (see ``serving/predlog.py``): ``timestamp``
(UTC, µs), ``request_id``, ``model``, ``model_version``, ``variant``, ``key``, one column per
feature and ``prediction``. Here a window of it is read with pyarrow only (no pandas): only the
wanted columns, chunks whose timestamps all fall outside the window skipped on their Parquet
statistics, rows filtered with Arrow compute kernels.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring.windows import parse_duration

TIMESTAMP = "timestamp"
PREDICTION = "prediction"
VERSION = "model_version"
MODEL = "model"
RESERVED = ("timestamp", "request_id", "model", "model_version", "variant", "key", "prediction")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: the server stores a feature whose name collides with a reserved column under this prefix
RENAMED_PREFIX = "feature:"


def log_column(feature: str) -> str:
    """The prediction log's column for a feature (``feature:NAME`` when NAME is reserved)."""
    return f"{RENAMED_PREFIX}{feature}" if feature in RESERVED else feature


@dataclass(frozen=True)
class TimeRange:
    """``start <= t < end`` in UTC; either end may be open (None)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def describe(self) -> str:
        if self.start is None and self.end is None:
            return "ever"
        if self.end is None:
            return f"since {_iso(self.start)}"
        if self.start is None:
            return f"before {_iso(self.end)}"
        return f"between {_iso(self.start)} and {_iso(self.end)}"


def _iso(moment: dt.datetime | None) -> str:
    return (
        "-" if moment is None else moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    )


def _utc(moment: Any, name: str) -> dt.datetime:
    if isinstance(moment, str):
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            raise InvalidArgument(
                f"{name} is {moment!r}, not a date.",
                hint="Write it as 2026-11-22T14:00 (ISO 8601).",
            ) from None
    if not isinstance(moment, dt.datetime):
        raise InvalidArgument(f"{name} is {moment!r}.", hint="Pass a datetime or an ISO 8601 text.")
    if moment.tzinfo is None:  # naive: the user's local time, as datetime.now() gives it
        moment = moment.astimezone()
    return moment.astimezone(dt.timezone.utc)


def time_range(
    *, window: Any = None, since: Any = None, until: Any = None, now: dt.datetime | None = None
) -> TimeRange:
    """The rows to read: the last ``window`` (``"1h"``, a timedelta) before ``until`` (default:
    now), or everything ``since``..``until``; all rows when nothing is given.

    Raises:
        InvalidArgument: both ``window`` and ``since``, a bad duration or date, an empty range.
    """
    if window is not None and since is not None:
        raise InvalidArgument(
            "Both a window and a start (since) were given.",
            hint="Use --window 1h for the last hour, or --since DATE, not both.",
        )
    end = None if until is None else _utc(until, "until")
    start = None if since is None else _utc(since, "since")
    if window is not None:
        if isinstance(window, str):
            length = dt.timedelta(seconds=float(parse_duration(window) / np.timedelta64(1, "s")))
        elif isinstance(window, dt.timedelta):
            length = window
        else:
            raise InvalidArgument(
                f"window is {window!r}.", hint="Give a duration such as '1h', '30m' or '7d'."
            )
        if length <= dt.timedelta(0):
            raise InvalidArgument(f"window is {window!r}.", hint="Use a positive duration.")
        reference_end = end or (now or dt.datetime.now(dt.timezone.utc))
        start = reference_end - length
    if start is not None and end is not None and start >= end:
        raise InvalidArgument(
            f"The range {_iso(start)} .. {_iso(end)} is empty.", hint="Start before the end."
        )
    return TimeRange(start, end)


@dataclass(frozen=True)
class LogSummary:
    """What a prediction log holds overall (for messages): rows, first and last timestamps."""

    n_rows: int
    first: dt.datetime | None
    last: dt.datetime | None
    versions: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.n_rows == 0:
            return "no prediction has been logged yet"
        return f"{self.n_rows:,} rows were logged from {_iso(self.first)} to {_iso(self.last)}"


def log_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The finished chunks of a log folder, oldest name first (temporary files excluded)."""
    path = Path(folder)
    if not path.is_dir():
        return []
    return sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))


def _micros(moment: dt.datetime | None) -> int | None:
    if moment is None:
        return None
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def _time_stats(meta: pq.FileMetaData, index: int) -> tuple[int, int] | None:
    """(min, max) of the timestamp column in µs over all row groups, if every group has stats."""
    lo: int | None = None
    hi: int | None = None
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        a, b = _stat_micros(stats.min), _stat_micros(stats.max)
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return None if lo is None or hi is None else (lo, hi)


def _stat_micros(value: Any) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # Arrow's UTC timestamps come back naive from old readers
            value = value.replace(tzinfo=dt.timezone.utc)
        return (value - EPOCH) // dt.timedelta(microseconds=1)
    return int(value)


def summarize_log(folder: str | os.PathLike[str], *, version: str | None = None) -> LogSummary:
    """Rows, first and last timestamps of the whole log (of one model version if given)."""
    n = 0
    first: int | None = None
    last: int | None = None
    versions: set[str] = set()
    for path in log_files(folder):
        try:
            table = pq.read_table(path, columns=[TIMESTAMP, VERSION])
        except (OSError, pa.ArrowInvalid, KeyError):
            continue
        versions.update(v for v in pc.unique(table.column(VERSION)).to_pylist() if v)
        if version is not None:
            table = table.filter(pc.equal(table.column(VERSION), version))
        if table.num_rows == 0:
            continue
        stamps = table.column(TIMESTAMP).cast(pa.int64())
        lo, hi = pc.min_max(stamps).values()
        n += table.num_rows
        first = lo.as_py() if first is None else min(first, lo.as_py())
        last = hi.as_py() if last is None else max(last, hi.as_py())
    return LogSummary(n, _from_micros(first), _from_micros(last), tuple(sorted(versions)))


def _from_micros(value: int | None) -> dt.datetime | None:
    if value is None:
        return None
    return EPOCH + dt.timedelta(microseconds=value)


def read_log_window(
    folder: str | os.PathLike[str],
    columns: Sequence[str],
    *,
    when: TimeRange | None = None,
    version: str | None = None,
) -> pa.Table:
    """The rows of the log in ``when`` (of model version ``version`` if given), with the
    ``timestamp`` column and those of ``columns`` that the chunks have.

    A chunk without one of ``columns`` (a version with another signature) contributes nulls
    for it. Rows come in file order; :func:`timestamps` gives their times.
    """
    when = when or TimeRange()
    lo, hi = _micros(when.start), _micros(when.end)
    wanted = list(dict.fromkeys([TIMESTAMP, *columns]))
    tables: list[pa.Table] = []
    for path in log_files(folder):
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowInvalid):
            continue  # a foreign or damaged file: not ours to judge here
        names = parquet.schema_arrow.names
        if TIMESTAMP not in names:
            continue
        stats = _time_stats(parquet.metadata, names.index(TIMESTAMP))
        if stats is not None and (
            (lo is not None and stats[1] < lo) or (hi is not None and stats[0] >= hi)
        ):
            continue
        present = [c for c in wanted if c in names]
        read = present + ([VERSION] if version is not None and VERSION not in present else [])
        table = parquet.read(columns=read)
        mask = None
        stamps = table.column(TIMESTAMP).cast(pa.int64())
        if lo is not None:
            mask = pc.greater_equal(stamps, lo)
        if hi is not None:
            below = pc.less(stamps, hi)
            mask = below if mask is None else pc.and_(mask, below)
        if version is not None:
            same = pc.equal(table.column(VERSION), version)
            mask = same if mask is None else pc.and_(mask, same)
        if mask is not None:
            table = table.filter(mask)
        if table.num_rows:
            tables.append(table.select(present))
    if not tables:
        return pa.table({TIMESTAMP: pa.array([], type=pa.timestamp("us", tz="UTC"))})
    return pa.concat_tables(tables, promote_options="default")


def timestamps(table: pa.Table) -> np.ndarray:
    """The ``timestamp`` column as ``datetime64[us]`` (UTC, naive)."""
    return table.column(TIMESTAMP).cast(pa.int64()).to_numpy().astype("datetime64[us]")
