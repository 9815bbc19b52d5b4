"""Drift over time: the same engine on sliding windows of the current data.

The rows are ordered by timestamp once and every column is read and checked once; each window
is then a slice (a view) compared against the profile, so a window costs one sort of its own
values per numerical column and nothing for the reference.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Any

import numpy as np

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring.drift import (
    DriftOptions,
    ReferenceProfile,
    as_profile,
    compare_window,
    read_current,
)
from jupyter_modelhub.monitoring.records import DriftReport, DriftTimeline

_UNITS = {"s": "s", "m": "m", "min": "m", "h": "h", "d": "D", "w": "W"}


def parse_duration(text: str) -> np.timedelta64:
    """``"30s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"2w"`` as a ``numpy.timedelta64``."""
    match = re.fullmatch(r"\s*(\d+)\s*(s|m|min|h|d|w)\s*", text.lower())
    if not match or int(match.group(1)) == 0:
        raise InvalidArgument(
            f"{text!r} is not a duration.",
            hint="Write a positive whole number and a unit: 30s, 15m, 1h, 7d or 2w.",
        )
    return np.timedelta64(int(match.group(1)), _UNITS[match.group(2)])  # type: ignore[call-overload]


def _duration(value: Any, name: str, numeric: bool) -> Any:
    if isinstance(value, str):
        if numeric:
            raise InvalidArgument(
                f"{name} is {value!r} but the timestamps are plain numbers.",
                hint=f"Give {name} as a number in the timestamps' unit.",
            )
        return parse_duration(value)
    if isinstance(value, dt.timedelta):
        value = np.timedelta64(value)
    elif hasattr(value, "to_timedelta64"):  # pandas.Timedelta
        value = value.to_timedelta64()
    if isinstance(value, np.timedelta64):
        if numeric:
            raise InvalidArgument(
                f"{name} is a duration but the timestamps are plain numbers.",
                hint=f"Give {name} as a number in the timestamps' unit.",
            )
        if value <= np.timedelta64(0, "s"):
            raise InvalidArgument(f"{name} is {value}.", hint="Use a positive duration.")
        return value
    if not numeric:
        raise InvalidArgument(
            f"{name} is {value!r} but the timestamps are dates.",
            hint=f"Give {name} as a duration such as '1h' or datetime.timedelta(hours=1).",
        )
    if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
        raise InvalidArgument(f"{name} is {value!r}.", hint="Use a positive number.")
    return value


def drift_over_time(
    reference: ReferenceProfile | Any,
    current: Any,
    timestamps: Any,
    *,
    window: Any,
    step: Any = None,
    options: DriftOptions | None = None,
    min_rows: int = 1,
) -> tuple[DriftTimeline, list[DriftReport | None]]:
    """Per-window drift of each feature, windows ``[start, start + window)`` every ``step``.

    Args:
        reference: a profile (or the reference data).
        current: the rows to slice, in any container :func:`compute_drift` accepts.
        timestamps: one per row: datetime64 values (NaT rows are dropped) or plain numbers.
        window: window length: ``"1h"``, a ``timedelta``/``timedelta64``, or a number for numeric
            timestamps.
        step: distance between window starts (default: ``window``, i.e. tumbling windows).
        options: as for :func:`compute_drift` (histograms are off unless asked for).
        min_rows: windows with fewer rows get no report (NaN scores).

    Returns:
        The timeline (scores per feature and window) and the per-window reports (None for a
        window below ``min_rows``). The first window starts at the earliest timestamp.
    """
    options = options or DriftOptions(histograms=False)
    profile = as_profile(reference, options)
    stamps = np.asarray(timestamps)
    if stamps.ndim != 1:
        raise InvalidArgument("timestamps must be one value per row.", hint="Pass a 1-D array.")
    numeric = stamps.dtype.kind in "iuf"
    if not numeric and stamps.dtype.kind != "M":
        try:
            stamps = stamps.astype("datetime64[ns]")
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"timestamps have dtype {stamps.dtype}.",
                hint="Pass datetime64 values (or pandas Timestamps) or plain numbers.",
            ) from None
    length = _duration(window, "window", numeric)
    stride = length if step is None else _duration(step, "step", numeric)
    data = read_current(profile, current, options, allow_empty=True)
    if stamps.size != data.n_rows:
        raise InvalidArgument(
            f"There are {stamps.size} timestamps for {data.n_rows} rows.",
            hint="Pass one timestamp per row of the current data.",
        )
    valid = ~np.isnat(stamps) if stamps.dtype.kind == "M" else np.isfinite(stamps)
    order = np.flatnonzero(valid)
    order = order[np.argsort(stamps[order], kind="stable")]
    stamps = stamps[order]
    data = data.take(order)
    if stamps.size == 0:
        raise InvalidArgument(
            "The current data has no row with a valid timestamp.",
            hint="Check the timestamps (NaT and NaN rows are dropped).",
        )
    starts = np.arange(stamps[0], stamps[-1] + (1 if numeric else np.timedelta64(1, "ns")), stride)
    ends = starts + length
    lo = np.searchsorted(stamps, starts, side="left")
    hi = np.searchsorted(stamps, ends, side="left")
    window_options = replace(options, columns=list(data.columns))
    names = tuple(data.columns)
    reports: list[DriftReport | None] = []
    scores = np.full((len(names), starts.size), np.nan)
    drifted = np.zeros((len(names), starts.size), dtype=bool)
    share = np.full(starts.size, np.nan)
    tests = [""] * len(names)
    thresholds = [np.nan] * len(names)
    for w, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        if b - a < max(1, min_rows):
            reports.append(None)
            continue
        report = compare_window(profile, data.rows(a, b), window_options)
        reports.append(report)
        share[w] = report.drift_share
        for feature in report.features:
            i = names.index(feature.column)
            scores[i, w] = feature.statistic
            drifted[i, w] = feature.drifted
            tests[i], thresholds[i] = feature.test, feature.threshold
    timeline = DriftTimeline(
        columns=names,
        tests=tuple(tests),
        thresholds=tuple(float(t) for t in thresholds),
        starts=starts,
        ends=ends,
        n_rows=hi - lo,
        scores=scores,
        drifted=drifted,
        drift_share=share,
    )
    return timeline, reports
