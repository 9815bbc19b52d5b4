"""Shadow comparison: the champion's and the challenger's answers to the same requests.

Three kinds of prediction are understood (``kind="auto"`` picks one from the arrays):

- ``labels``: one class per row (ints, strings, bools); rows agree when the labels are equal;
- ``regression``: one float per row; rows agree when ``|a - b| <= atol + rtol·|a|``
  (``numpy.isclose``); differences are ``challenger - champion``;
- ``probabilities``: a ``(rows, classes)`` matrix; rows agree when the arg-max classes are
  equal; a row's difference is the total-variation distance ``½·Σ|p - q|`` (between 0 and 1).

"auto" chooses ``probabilities`` for 2-D input, ``regression`` for 1-D floats and ``labels``
otherwise; pass ``kind="labels"`` for class ids stored as floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.inference import check_confidence, wilson_interval
from jupyter_modelhub.experiments.records import Interval
from jupyter_modelhub.models import Record

PredictionKind = Literal["labels", "regression", "probabilities"]
QUANTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Confusion(Record):
    """Counts of (champion class, challenger class): ``counts[i][j]`` rows whose champion said
    ``labels[i]`` and challenger said ``labels[j]``; the diagonal is agreement."""

    labels: tuple[Any, ...]
    counts: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class DifferenceSummary(Record):
    """Distribution of per-row differences (absolute, except ``mean_difference``).

    ``quantiles`` maps "p50", "p90", "p95", "p99" to quantiles of the absolute difference.
    """

    mean_difference: float
    mean_abs_difference: float
    max_abs_difference: float
    quantiles: dict[str, float]


@dataclass(frozen=True)
class Disagreement(Record):
    """One row where the two models disagree: its index and both answers (and, when the rows
    came from a deployment's logs, the request's id)."""

    index: int
    champion: Any
    challenger: Any
    difference: float | None
    request_id: str | None = None


@dataclass(frozen=True)
class ShadowReport(Record):
    """How far a challenger's predictions are from the champion's on the same requests."""

    kind: PredictionKind
    n: int
    agreements: int
    agreement_rate: float
    agreement_ci: Interval
    confusion: Confusion | None
    differences: DifferenceSummary | None
    top_disagreements: tuple[Disagreement, ...]
    summary: str


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar for a numpy scalar."""
    return value.item() if isinstance(value, np.generic) else value


def _infer_kind(champion: np.ndarray) -> PredictionKind:
    if champion.ndim == 2:
        return "probabilities"
    if champion.dtype.kind == "f":
        return "regression"
    return "labels"


def _check(champion: np.ndarray, challenger: np.ndarray, kind: PredictionKind) -> None:
    if champion.shape[:1] != challenger.shape[:1]:
        raise InvalidArgument(
            f"The champion has {len(champion)} predictions and the challenger {len(challenger)}.",
            hint="Pass both models' predictions for the same requests, in the same order.",
        )
    if len(champion) == 0:
        raise InvalidArgument(
            "There are no predictions to compare.", hint="Wait until shadow traffic arrives."
        )
    expected_ndim = 2 if kind == "probabilities" else 1
    if champion.ndim != expected_ndim or challenger.ndim != expected_ndim:
        raise InvalidArgument(
            f"{kind} predictions must be {expected_ndim}-D; got shapes {champion.shape} and "
            f"{challenger.shape}.",
            hint="Use kind='probabilities' for (rows, classes) matrices, otherwise 1-D arrays.",
        )
    if kind == "probabilities" and champion.shape != challenger.shape:
        raise InvalidArgument(
            f"The probability matrices differ in shape: {champion.shape} and {challenger.shape}.",
            hint="Both models must score the same classes in the same column order.",
        )
    if kind != "labels":
        for name, values in (("champion", champion), ("challenger", challenger)):
            if values.dtype.kind not in "biuf":
                raise InvalidArgument(f"The {name}'s {kind} predictions are not numeric.")
            if not np.all(np.isfinite(values)):
                raise InvalidArgument(
                    f"The {name}'s predictions contain NaN or infinite values.",
                    hint="Compare only rows where both models returned a number.",
                )


def _confusion(champion: np.ndarray, challenger: np.ndarray, labels: list[Any]) -> Confusion:
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    rows = np.fromiter((index[_plain(v)] for v in champion), dtype=np.int64, count=len(champion))
    cols = np.fromiter(
        (index[_plain(v)] for v in challenger), dtype=np.int64, count=len(challenger)
    )
    np.add.at(counts, (rows, cols), 1)
    return Confusion(
        labels=tuple(labels), counts=tuple(tuple(int(c) for c in row) for row in counts)
    )


def _label_order(champion: np.ndarray, challenger: np.ndarray) -> list[Any]:
    values = [_plain(v) for v in np.concatenate([champion, challenger])]
    unique = list(dict.fromkeys(values))
    try:
        return sorted(unique)
    except TypeError:  # mixed types: keep order of first appearance
        return unique


def _summarise(differences: np.ndarray) -> DifferenceSummary:
    absolute = np.abs(differences)
    return DifferenceSummary(
        mean_difference=float(np.mean(differences)),
        mean_abs_difference=float(np.mean(absolute)),
        max_abs_difference=float(np.max(absolute)),
        quantiles={f"p{round(q * 100)}": float(np.quantile(absolute, q)) for q in QUANTILES},
    )


def compare_predictions(
    champion: Any,
    challenger: Any,
    *,
    kind: PredictionKind | Literal["auto"] = "auto",
    top_k: int = 10,
    atol: float = 1e-8,
    rtol: float = 1e-5,
    class_labels: list[Any] | None = None,
    confidence: float = 0.95,
) -> ShadowReport:
    """Compare two models' predictions on the same requests, row by row.

    Args:
        champion, challenger: array-likes of equal length (see the module docstring).
        kind: ``labels``, ``regression``, ``probabilities`` or ``auto``.
        top_k: how many of the most different disagreeing rows to return (largest difference
            first; for labels, the first ``top_k`` disagreeing rows).
        atol, rtol: the agreement tolerance for regression.
        class_labels: names of the probability columns (default ``0..k-1``).
        confidence: level of the Wilson interval of the agreement rate.

    Raises:
        InvalidArgument: different lengths, no rows, wrong shapes, NaN/inf in numeric
            predictions, or a bad ``kind``/``top_k``/``class_labels``.
    """
    check_confidence(confidence)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidArgument(f"top_k must be a whole number >= 0, not {top_k!r}.")
    a, b = np.asarray(champion), np.asarray(challenger)
    if kind == "auto":
        kind = _infer_kind(a)
    if kind not in ("labels", "regression", "probabilities"):
        raise InvalidArgument(
            f"Unknown prediction kind {kind!r}.",
            hint="Use 'labels', 'regression', 'probabilities' or 'auto'.",
        )
    _check(a, b, kind)
    n = len(a)

    confusion: Confusion | None = None
    differences: DifferenceSummary | None = None
    row_difference: np.ndarray | None = None
    if kind == "labels":
        if a.dtype.kind != b.dtype.kind:  # e.g. "1" against 1: compare as Python objects
            a, b = a.astype(object), b.astype(object)
        agree = a == b
        confusion = _confusion(a, b, _label_order(a, b))
        shown_a, shown_b = a, b
    elif kind == "regression":
        a, b = a.astype(np.float64), b.astype(np.float64)
        agree = np.isclose(b, a, atol=atol, rtol=rtol)
        row_difference = b - a
        differences = _summarise(row_difference)
        shown_a, shown_b = a, b
    else:
        a, b = a.astype(np.float64), b.astype(np.float64)
        labels = list(range(a.shape[1])) if class_labels is None else list(class_labels)
        if len(labels) != a.shape[1]:
            raise InvalidArgument(
                f"{len(labels)} class labels for {a.shape[1]} probability columns.",
                hint="Give one label per column, in column order.",
            )
        classes = np.asarray(labels, dtype=object)
        shown_a, shown_b = classes[np.argmax(a, axis=1)], classes[np.argmax(b, axis=1)]
        agree = np.argmax(a, axis=1) == np.argmax(b, axis=1)
        confusion = _confusion(shown_a, shown_b, labels)
        row_difference = 0.5 * np.abs(b - a).sum(axis=1)
        differences = _summarise(row_difference)

    agree = np.asarray(agree, dtype=bool)
    agreements = int(np.count_nonzero(agree))
    disagreeing = np.flatnonzero(~agree)
    if row_difference is not None:
        order = np.argsort(-np.abs(row_difference[disagreeing]), kind="stable")
        disagreeing = disagreeing[order]
    top = tuple(
        Disagreement(
            index=int(i),
            champion=_plain(shown_a[i]),
            challenger=_plain(shown_b[i]),
            difference=float(row_difference[i]) if row_difference is not None else None,
        )
        for i in disagreeing[:top_k]
    )
    interval = wilson_interval(agreements, n, confidence)
    assert interval is not None  # n > 0 was checked
    summary = (
        f"{agreements / n:.1%} of {n:,} requests agree "
        f"({confidence:.0%} CI [{interval.low:.1%}, {interval.high:.1%}])"
    )
    if differences is not None:
        summary += (
            f"; mean |difference| {differences.mean_abs_difference:.4g}, "
            f"max {differences.max_abs_difference:.4g}"
        )
    return ShadowReport(
        kind=kind,
        n=n,
        agreements=agreements,
        agreement_rate=agreements / n,
        agreement_ci=interval,
        confusion=confusion,
        differences=differences,
        top_disagreements=top,
        summary=summary,
    )
