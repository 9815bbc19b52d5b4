"""From a deployment's logs to an A/B answer: join outcomes to assignments, then test.

The model server logs which variant answered each request (the prediction log's
``request_id``, ``key``, ``variant`` columns) and the outcomes posted back (the ``feedback``
log: ``request_id`` or ``key``, ``outcome``). ``experiment_outcomes`` joins them for one
experiment (requests since it started, of its variants):

- an outcome with a ``request_id`` belongs to that request's variant; one with only a ``key``
  to the variant that key was assigned (assignment is sticky, so a key has one variant);
- a request with several outcomes counts its latest;
- ``missing="zero"`` counts a logged request without an outcome as 0, so a rate is per
  exposure (conversions, clicks); ``"drop"`` leaves it out; ``"auto"`` (the default) zeroes
  when every outcome posted is 0 or 1 and drops otherwise (revenue, error).

Only logged requests count: the prediction log samples (``sample_rate``, a per-second cap), and
sampling is independent of the variant, so the estimates stay unbiased.

``analyse`` gives the fixed-horizon report (:func:`.abtest.ab_report`) and, for each
challenger, the always-valid answer (:func:`.sequential.sequential_test`) evaluated at looks
every ``look_every`` outcomes in time order, so its running minimum is what a person peeking
at that pace would have seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InvalidArgument
from ..models import Record
from .abtest import ABReport, ab_report
from .policy import CHAMPION
from .records import BinarySummary, NumericSummary
from .sequential import SequentialResult, sequential_test

Metric = Literal["auto", "rate", "mean"]
Missing = Literal["auto", "zero", "drop"]


@dataclass(frozen=True)
class VariantOutcomes:
    """One variant's outcomes in time order, and how many requests it served in the logs."""

    name: str
    requests: int
    outcomes: np.ndarray  # float64, time order
    times: np.ndarray  # float64 seconds, same order


@dataclass(frozen=True)
class ExperimentAnalysis(Record):
    """The A/B answer for one experiment: counts, the fixed-horizon report, and the
    always-valid result per challenger."""

    experiment: str
    metric: Literal["rate", "mean"]
    requests: dict[str, int]
    outcomes: dict[str, int]
    report: ABReport
    sequential: dict[str, SequentialResult]

    @property
    def summary(self) -> list[str]:
        """One line per challenger: the fixed-horizon verdict, then the always-valid one."""
        lines = []
        for comparison in self.report.comparisons:
            lines.append(comparison.verdict)
            seq = self.sequential.get(comparison.challenger)
            if seq is not None:
                lines.append(f"always-valid: {seq.verdict}")
        return lines


def _read(folder: Path, columns: list[str]) -> dict[str, np.ndarray]:
    """The given columns of every Parquet chunk directly in ``folder`` (empty if none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else ():
        table = pq.read_table(path)
        present = [c for c in columns if c in table.column_names]
        table = table.select(present)
        for c in columns:
            if c not in table.column_names:
                table = table.append_column(c, pa.nulls(len(table), pa.string()))
        tables.append(table)
    if not tables:
        return {c: np.array([], dtype=object) for c in columns}
    table = pa.concat_tables(tables, promote_options="permissive")
    out: dict[str, np.ndarray] = {}
    for c in columns:
        column = table.column(c)
        if pa.types.is_timestamp(column.type):
            micros = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
            out[c] = micros.astype(np.float64) / 1e6
        else:
            out[c] = np.asarray(column.to_pylist(), dtype=object)
    return out


def experiment_outcomes(
    predictions: Path,
    feedback: Path,
    variants: Iterable[str] | None,
    *,
    since: datetime | None = None,
    missing: Missing = "auto",
    untagged: str | None = CHAMPION,
) -> dict[str, VariantOutcomes]:
    """Join the logged assignments and outcomes of an experiment, per variant (``variants``
    ``None``: every variant found in the log).

    A row logged without a variant (by a server that served no experiment) counts as
    ``untagged``; ``None`` leaves it out, which is what an experiment's analysis wants: the
    requests answered before the replicas took the experiment's policy are not part of it.
    """
    start = since.timestamp() if since is not None else float("-inf")
    logged = _read(predictions, ["timestamp", "request_id", "key", "variant"])
    names = (
        list(variants)
        if variants is not None
        else sorted({str(v or untagged) for v in logged["variant"] if v or untagged})
    )
    assigned: dict[str, tuple[str, float]] = {}
    key_variant: dict[str, str] = {}
    for t, rid, key, variant in zip(
        logged["timestamp"], logged["request_id"], logged["key"], logged["variant"], strict=True
    ):
        variant = variant or untagged
        if variant is None or t < start or variant not in names or rid in assigned:
            continue
        assigned[rid] = (variant, float(t))
        if key is not None:
            key_variant[key] = variant
    posted = _read(feedback, ["timestamp", "request_id", "key", "outcome"])
    by_request: dict[str, tuple[float, float]] = {}  # request id -> (time, outcome)
    by_key: list[tuple[str, float, float]] = []
    for t, rid, key, outcome in zip(
        posted["timestamp"], posted["request_id"], posted["key"], posted["outcome"], strict=True
    ):
        if t < start:
            continue
        if rid is not None:
            if rid in assigned and (rid not in by_request or by_request[rid][0] <= t):
                by_request[rid] = (float(t), float(outcome))
        elif key is not None and key in key_variant:
            by_key.append((key_variant[key], float(t), float(outcome)))
    if missing == "auto":
        values = [o for _, o in by_request.values()] + [o for _, _, o in by_key]
        missing = "zero" if all(o in (0.0, 1.0) for o in values) else "drop"
    rows: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    counts = dict.fromkeys(names, 0)
    for rid, (variant, t) in assigned.items():
        counts[variant] += 1
        if rid in by_request:
            rows[variant].append((by_request[rid][0], by_request[rid][1]))
        elif missing == "zero":
            rows[variant].append((t, 0.0))
    for variant, t, outcome in by_key:
        rows[variant].append((t, outcome))
    out = {}
    for name in names:
        ordered = sorted(rows[name])
        out[name] = VariantOutcomes(
            name,
            counts[name],
            np.array([o for _, o in ordered], dtype=np.float64),
            np.array([t for t, _ in ordered], dtype=np.float64),
        )
    return out


def _summary(values: np.ndarray, metric: str) -> BinarySummary | NumericSummary:
    if metric == "rate":
        return BinarySummary(int(values.size), int(np.count_nonzero(values)))
    return NumericSummary.from_values(values)


def analyse(
    experiment: str,
    data: Mapping[str, VariantOutcomes],
    *,
    metric: Metric = "auto",
    alpha: float = 0.05,
    min_samples: int = 100,
    higher_is_better: bool = True,
    look_every: int = 100,
    metric_label: str | None = None,
) -> ExperimentAnalysis:
    """The fixed-horizon and always-valid answers for ``data`` (champion = control).

    Raises:
        InvalidArgument: no champion in ``data``; binary metric asked for non-0/1 outcomes.
    """
    if CHAMPION not in data:
        raise InvalidArgument(f"The analysis needs the '{CHAMPION}' variant's outcomes.")
    every = np.concatenate([v.outcomes for v in data.values()]) if data else np.array([])
    binary = bool(np.isin(every, (0.0, 1.0)).all())
    if metric == "auto":
        metric = "rate" if binary else "mean"
    if metric == "rate" and not binary:
        raise InvalidArgument(
            "A rate needs outcomes of 0 or 1, but some outcomes are other numbers.",
            hint="Analyse them as a mean (metric='mean').",
        )
    summaries = {name: _summary(v.outcomes, metric) for name, v in data.items()}
    report = ab_report(
        summaries,
        CHAMPION,
        alpha=alpha,
        min_samples=min_samples,
        higher_is_better=higher_is_better,
        metric_label=metric_label,
    )
    sequential = {
        name: _sequential(
            data[CHAMPION], v, metric, alpha, min_samples, look_every, higher_is_better
        )
        for name, v in data.items()
        if name != CHAMPION
    }
    return ExperimentAnalysis(
        experiment=experiment,
        metric=metric,
        requests={n: v.requests for n, v in data.items()},
        outcomes={n: int(v.outcomes.size) for n, v in data.items()},
        report=report,
        sequential=sequential,
    )


def _sequential(
    control: VariantOutcomes,
    challenger: VariantOutcomes,
    metric: str,
    alpha: float,
    min_samples: int,
    look_every: int,
    higher_is_better: bool,
) -> SequentialResult:
    """The mSPRT after looks every ``look_every`` outcomes (both variants, in time order)."""
    times = np.concatenate([control.times, challenger.times])
    total = times.size
    edges = np.sort(times)[look_every - 1 :: max(1, look_every)] if total else np.array([])
    if not edges.size or edges[-1] != (times.max() if total else 0.0):
        edges = np.append(edges, times.max() if total else 0.0)
    result: SequentialResult | None = None
    for edge in edges:
        a = control.outcomes[control.times <= edge]
        b = challenger.outcomes[challenger.times <= edge]
        result = sequential_test(
            _summary(a, metric),
            _summary(b, metric),
            alpha=alpha,
            previous=result,
            min_samples=min_samples,
            control_name=CHAMPION,
            challenger_name=challenger.name,
            higher_is_better=higher_is_better,
        )
    assert result is not None
    return result


def describe_outcomes(data: Mapping[str, VariantOutcomes]) -> dict[str, Any]:
    """Counts per variant, for status lines."""
    return {n: {"requests": v.requests, "outcomes": int(v.outcomes.size)} for n, v in data.items()}
