"""The drift engine's results: frozen records with ``to_dict()`` (JSON-ready: NaN becomes None).

:class:`DriftReport` is what one comparison returns: one :class:`FeatureDrift` per compared
column, **sorted by drift** (drifted features first, then by effect size, largest first, then by
name), and the dataset-level verdict. :class:`DriftTimeline` is what the sliding-window helper
returns. Histograms carry aggregates only (counts on the profile's shared bins), never rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring.columns import ColumnKind


def _json_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Histogram:
    """Reference and current counts of one feature on the profile's shared bins.

    Numerical: ``edges`` are the inner edges (bin ``b`` holds ``edges[b-1] <= x < edges[b]``,
    the first and last bins are open-ended) and ``labels`` is empty; when ``discrete``, the
    column has few distinct values and every other bin ``[v, next float after v)`` holds
    exactly one reference value ``v`` (the bins between catch values the reference never had).
    Categorical: ``labels`` are the categories seen on either side (the reference's, then
    those new in the current window) and ``edges`` is empty.
    """

    kind: ColumnKind
    edges: tuple[float, ...]
    labels: tuple[str, ...]
    reference: tuple[int, ...]
    current: tuple[int, ...]
    discrete: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "discrete": self.discrete,
            "edges": list(self.edges),
            "labels": list(self.labels),
            "reference": list(self.reference),
            "current": list(self.current),
        }


@dataclass(frozen=True)
class FeatureDrift:
    """The drift verdict for one feature (column).

    ``statistic`` is the score of ``test`` (a distance, or the KS / chi-square statistic);
    ``p_value`` is set for the p-value tests ("ks", "chisquare") only, ``p_value_adjusted`` is
    it after the report's multiple-testing correction. ``effect_size`` is always set:
    the Wasserstein distance in reference standard deviations for numerical features, the
    Jensen-Shannon distance for categorical ones (``effect_measure`` names it). ``drifted`` is

    * distance tests: ``statistic >= threshold``;
    * p-value tests: ``p_value_adjusted < threshold and effect_size >= min_effect``.

    ``n_dropped`` counts the current rows left out (NaN, infinite or missing). ``note``
    explains a degenerate case (constant column, single category, no value left).
    """

    column: str
    kind: ColumnKind
    test: str
    statistic: float
    p_value: float | None
    p_value_adjusted: float | None
    effect_size: float
    effect_measure: str
    threshold: float
    min_effect: float | None
    drifted: bool
    n_reference: int
    n_current: int
    n_dropped: int
    note: str = ""
    histogram: Histogram | None = field(default=None, compare=False, repr=False)

    def to_dict(self, *, histogram: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "column": self.column,
            "kind": self.kind,
            "test": self.test,
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "p_value_adjusted": _json_float(self.p_value_adjusted),
            "effect_size": _json_float(self.effect_size),
            "effect_measure": self.effect_measure,
            "threshold": self.threshold,
            "min_effect": self.min_effect,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_dropped": self.n_dropped,
            "note": self.note,
        }
        if histogram:
            out["histogram"] = None if self.histogram is None else self.histogram.to_dict()
        return out


def drift_order(feature: FeatureDrift) -> tuple[bool, float, str]:
    """Sort key: drifted first, then larger effect first, then by name."""
    effect = feature.effect_size if math.isfinite(feature.effect_size) else -1.0
    return (not feature.drifted, -effect, feature.column)


@dataclass(frozen=True)
class DriftReport:
    """One comparison of a current window against the reference.

    ``dataset_drift`` is ``drift_share >= drift_share_threshold`` where ``drift_share`` is the
    share of compared features that drifted (Evidently's rule, default threshold 0.5).
    ``skipped`` maps a column that was not compared to the reason (unusable in the reference,
    excluded); ``ignored_columns`` lists current columns the reference does not have.
    """

    features: tuple[FeatureDrift, ...]
    n_reference: int
    n_current: int
    correction: str
    drift_share: float
    drift_share_threshold: float
    dataset_drift: bool
    skipped: Mapping[str, str] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_drifted(self) -> int:
        return sum(f.drifted for f in self.features)

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.features if f.drifted)

    def feature(self, column: str) -> FeatureDrift:
        """The result for one column."""
        for f in self.features:
            if f.column == column:
                return f
        raise InvalidArgument(
            f"The report has no feature {column!r}.",
            hint=f"It compared: {', '.join(f.column for f in self.features) or 'nothing'}.",
        )

    def to_dict(self, *, histograms: bool = True) -> dict[str, Any]:
        return {
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_features": self.n_features,
            "n_drifted": self.n_drifted,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "dataset_drift": self.dataset_drift,
            "correction": self.correction,
            "skipped": dict(self.skipped),
            "ignored_columns": list(self.ignored_columns),
            "features": [f.to_dict(histogram=histograms) for f in self.features],
        }


@dataclass(frozen=True, eq=False)
class DriftTimeline:
    """Per-window drift scores of each feature (sliding windows over time).

    ``scores[i, w]`` is the score of ``columns[i]`` (test ``tests[i]``) in window ``w``
    (``starts[w] <= t < ends[w]``, ``n_rows[w]`` rows); NaN where the window had no usable value.
    ``drifted`` applies each test's threshold; ``drift_share[w]`` is the share of drifted features.
    """

    columns: tuple[str, ...]
    tests: tuple[str, ...]
    thresholds: tuple[float, ...]
    starts: np.ndarray
    ends: np.ndarray
    n_rows: np.ndarray
    scores: np.ndarray
    drifted: np.ndarray
    drift_share: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        def times(values: np.ndarray) -> list[Any]:
            if np.issubdtype(values.dtype, np.datetime64):
                return [str(v) for v in values]
            return [float(v) for v in values]

        return {
            "columns": list(self.columns),
            "tests": list(self.tests),
            "thresholds": list(self.thresholds),
            "starts": times(self.starts),
            "ends": times(self.ends),
            "n_rows": [int(v) for v in self.n_rows],
            "scores": [[_json_float(v) for v in row] for row in self.scores],
            "drifted": [[bool(v) for v in row] for row in self.drifted],
            "drift_share": [_json_float(v) for v in self.drift_share],
        }
