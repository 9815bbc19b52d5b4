"""Always-valid inference: a p-value and interval that stay valid however often you look.

This is the mixture sequential probability ratio test (mSPRT) with a normal mixing
distribution of Johari, Pekelis and Walsh (2017), "Always valid inference: continuous
monitoring of A/B tests". With ``d`` the observed difference ``challenger - control``, ``s²``
its variance (``var₁/n₁ + var₂/n₂``, estimated) and ``τ²`` the mixing variance, the likelihood
ratio of "difference θ ~ N(0, τ²)" against "no difference" is::

    Λ = sqrt(s² / (s² + τ²)) · exp(τ² d² / (2 s² (s² + τ²)))

The always-valid p-value is the running minimum of ``min(1, 1/Λ)`` over every look; rejecting
when it falls below ``alpha`` keeps the false-positive rate at most ``alpha`` under continuous
peeking. The always-valid interval is ``{θ : Λ(θ) < 1/alpha}``, i.e. ``d ± h`` with::

    h = sqrt(2 s² (s² + τ²) / τ² · (log(1/alpha) + ½ log((s² + τ²) / s²)))

intersected over looks. For rates the p-value uses the pooled variance (as the z-test does) and
the interval the unpooled one; for means both use Welch's ``var₁/n₁ + var₂/n₂``.

**The mixing variance** ``τ²`` is in squared units of the difference. Set it to about the square
of the effect you expect or care about: for a 1 percentage-point change in conversion,
``mixing_variance=0.01**2``; for a 50 ms change in latency, ``0.05**2``. A larger ``τ²`` stops
sooner on large effects, a smaller one has more power for small effects. The default is
``(DEFAULT_MIXING_EFFECT · sd)²``, a tenth of one observation's standard deviation ``sd`` (pooled
over both variants), estimated at the first look that has ``min_samples`` per variant and then
kept fixed: pass each result back as ``previous`` so it stays fixed and the running minimum and
intersection carry over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.inference import check_alpha
from jupyter_modelhub.experiments.records import (
    BinarySummary,
    Interval,
    MetricKind,
    NumericSummary,
    Summary,
)
from jupyter_modelhub.models import Record

DEFAULT_MIXING_EFFECT = 0.1
"""The default mixing standard deviation, in units of one observation's standard deviation."""


def log_likelihood_ratio(
    difference: ArrayLike, variance: ArrayLike, mixing_variance: ArrayLike
) -> np.ndarray:
    """``log Λ`` of the normal-mixture SPRT against "no difference" (vectorised, broadcasts).

    A zero ``variance`` (no spread in the data) gives ``-inf`` for a zero difference and
    ``+inf`` otherwise.
    """
    d = np.asarray(difference, dtype=np.float64)
    s2 = np.asarray(variance, dtype=np.float64)
    t2 = np.asarray(mixing_variance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 0.5 * np.log(s2 / (s2 + t2)) + t2 * d * d / (2.0 * s2 * (s2 + t2))
    degenerate = np.where(d == 0.0, -np.inf, np.inf)
    return np.where(s2 > 0.0, value, degenerate)


def always_valid_p_values(
    differences: ArrayLike, variances: ArrayLike, mixing_variance: ArrayLike
) -> np.ndarray:
    """The always-valid p-value after each look; looks run along the last axis.

    Each entry is ``min(1, min over earlier looks of 1/Λ)``, so the result never increases.
    """
    log_lr = log_likelihood_ratio(differences, variances, mixing_variance)
    with np.errstate(over="ignore"):
        p = np.minimum(1.0, np.exp(-log_lr))
    return np.minimum.accumulate(p, axis=-1)


def always_valid_half_width(variance: float, mixing_variance: float, alpha: float) -> float:
    """Half the width of the (single-look) always-valid interval; 0 when ``variance`` is 0."""
    if variance <= 0.0:
        return 0.0
    total = variance + mixing_variance
    return math.sqrt(
        2.0
        * variance
        * total
        / mixing_variance
        * (math.log(1.0 / alpha) + 0.5 * math.log(total / variance))
    )


@dataclass(frozen=True)
class SequentialResult(Record):
    """The state of an always-valid test after one look; pass it back as ``previous``.

    ``p_value`` is the running minimum over looks and ``ci`` the running intersection (both
    ``None``/1.0 before the first look with ``min_samples`` per variant). ``rejected`` means
    "stop: the difference is significant at ``alpha``", and stays true once reached.
    """

    control: str
    challenger: str
    metric: MetricKind
    n_control: int
    n_challenger: int
    difference: float | None
    p_value: float
    ci: Interval | None
    alpha: float
    mixing_variance: float | None
    looks: int
    rejected: bool
    verdict: str


def _variances(control: Summary, challenger: Summary) -> tuple[float, float, float, float]:
    """(difference, variance for the test, variance for the interval, one observation's variance)."""
    if isinstance(control, BinarySummary) and isinstance(challenger, BinarySummary):
        p1, p2 = control.successes / control.n, challenger.successes / challenger.n
        pooled = (control.successes + challenger.successes) / (control.n + challenger.n)
        inverse_n = 1.0 / control.n + 1.0 / challenger.n
        unpooled = p1 * (1 - p1) / control.n + p2 * (1 - p2) / challenger.n
        return p2 - p1, pooled * (1 - pooled) * inverse_n, unpooled, pooled * (1 - pooled)
    if isinstance(control, NumericSummary) and isinstance(challenger, NumericSummary):
        welch = control.variance / control.n + challenger.variance / challenger.n
        observation = (
            (control.n - 1) * control.variance + (challenger.n - 1) * challenger.variance
        ) / (control.n + challenger.n - 2)
        return challenger.mean - control.mean, welch, welch, observation
    raise InvalidArgument(
        "The control and the challenger summarise different kinds of outcome.",
        hint="Use BinarySummary for both or NumericSummary for both.",
    )


def _signed(value: float, metric: MetricKind) -> str:
    return f"{value * 100:+.1f} pp" if metric == "rate" else f"{value:+.4g}"


def _check_previous(
    previous: SequentialResult, control: Summary, challenger: Summary, alpha: float
) -> None:
    if previous.alpha != alpha:
        raise InvalidArgument(
            f"alpha changed between looks ({previous.alpha} then {alpha}).",
            hint="Keep alpha fixed for the whole experiment.",
        )
    if control.n < previous.n_control or challenger.n < previous.n_challenger:
        raise InvalidArgument(
            "The summaries have fewer observations than at the previous look.",
            hint="Pass cumulative summaries since the start of the experiment.",
        )


def sequential_test(
    control: Summary,
    challenger: Summary,
    *,
    alpha: float = 0.05,
    mixing_variance: float | None = None,
    previous: SequentialResult | None = None,
    min_samples: int = 100,
    control_name: str = "control",
    challenger_name: str = "challenger",
    higher_is_better: bool = True,
    metric_label: str | None = None,
) -> SequentialResult:
    """One look at a continuously monitored experiment (mSPRT, see the module docstring).

    Args:
        control, challenger: cumulative summaries since the experiment started.
        alpha: the false-positive rate guaranteed however often you look.
        mixing_variance: ``τ²`` in squared units of the difference; ``None`` picks the default
            (or keeps the one in ``previous``).
        previous: the result of the previous look, to carry the running minimum p-value, the
            interval intersection and the mixing variance.
        min_samples: looks before this many observations per variant are not evaluated
            (plug-in variances are unreliable on tiny samples).

    Raises:
        InvalidArgument: mixed summary kinds, a bad alpha or mixing variance, or a ``previous``
            that does not fit (another alpha, more observations than now).
    """
    check_alpha(alpha)
    if mixing_variance is not None and not (math.isfinite(mixing_variance) and mixing_variance > 0):
        raise InvalidArgument(
            f"mixing_variance must be a positive number, not {mixing_variance}.",
            hint="Use the square of the effect size you expect, e.g. 0.01**2 for 1 pp.",
        )
    metric: MetricKind = "rate" if isinstance(control, BinarySummary) else "mean"
    if type(control) is not type(challenger):
        _variances(control, challenger)  # raises the mixed-kinds error
    if previous is not None:
        _check_previous(previous, control, challenger, alpha)
        if mixing_variance is not None and previous.mixing_variance not in (None, mixing_variance):
            raise InvalidArgument(
                f"mixing_variance changed between looks ({previous.mixing_variance} then "
                f"{mixing_variance}).",
                hint="Keep it fixed for the whole experiment, or leave it None after the first look.",
            )
        if mixing_variance is None:
            mixing_variance = previous.mixing_variance
    p_before = previous.p_value if previous else 1.0
    ci_before = previous.ci if previous else None
    looks = (previous.looks if previous else 0) + 1

    def result(
        difference: float | None,
        p_value: float,
        ci: Interval | None,
        mixing_variance: float | None,
        rejected: bool,
        verdict: str,
    ) -> SequentialResult:
        return SequentialResult(
            control=control_name,
            challenger=challenger_name,
            metric=metric,
            n_control=control.n,
            n_challenger=challenger.n,
            difference=difference,
            p_value=p_value,
            ci=ci,
            alpha=alpha,
            mixing_variance=mixing_variance,
            looks=looks,
            rejected=rejected,
            verdict=verdict,
        )

    needed = max(min_samples, 2)
    smaller = min(control.n, challenger.n)
    difference, test_variance, ci_variance, observation_variance = (
        _variances(control, challenger) if smaller >= 2 else (0.0, 0.0, 0.0, 0.0)
    )
    if mixing_variance is None and smaller >= needed and observation_variance > 0:
        mixing_variance = DEFAULT_MIXING_EFFECT**2 * observation_variance
    if smaller < needed or mixing_variance is None:
        short, n = (
            (challenger_name, challenger.n)
            if challenger.n < control.n
            else (control_name, control.n)
        )
        reason = (
            f"n<{needed} ({short} has {n})"
            if smaller < needed
            else "every outcome so far is identical"
        )
        return result(
            difference if smaller >= 2 else None,
            p_before,
            ci_before,
            mixing_variance,
            previous.rejected if previous else False,
            f"not enough data: {reason}",
        )

    log_lr = float(log_likelihood_ratio(difference, test_variance, mixing_variance))
    p_now = 1.0 if log_lr <= 0.0 else math.exp(-log_lr)
    p_value = min(p_before, p_now)
    half = always_valid_half_width(ci_variance, mixing_variance, alpha)
    ci = Interval(low=difference - half, high=difference + half)
    if ci_before is not None:
        low, high = max(ci.low, ci_before.low), min(ci.high, ci_before.high)
        if low <= high:  # an empty intersection (probability <= alpha) keeps the current one
            ci = Interval(low=low, high=high)
    rejected = p_value < alpha
    label = metric_label or metric
    detail = (
        f"{_signed(difference, metric)} {label}, always-valid {(1 - alpha) * 100:g}% CI "
        f"[{_signed(ci.low, metric)}, {_signed(ci.high, metric)}], "
        f"{'p<0.001' if p_value < 0.001 else f'p={p_value:.3f}'}"
    )
    if rejected:
        direction = "better" if (difference > 0) == higher_is_better else "worse"
        verdict = f"challenger {challenger_name} {direction}: {detail}; safe to stop"
    else:
        verdict = f"no significant difference yet: {detail}; keep collecting"
    return result(difference, p_value, ci, mixing_variance, rejected, verdict)
