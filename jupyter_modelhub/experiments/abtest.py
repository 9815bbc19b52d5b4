"""The fixed-horizon A/B (or A/B/n) report: every challenger against the champion.

For each variant: its count, its rate (Wilson interval) or mean (t interval). For each
challenger against the control: the absolute difference with its interval (Wald for rates,
Welch for means), the relative lift with a delta-method interval, a two-sided p-value (pooled
z-test for rates, Welch's t-test for means), optionally adjusted across challengers (Holm or
Bonferroni), and a verdict in plain words.

Intervals are per comparison at ``1 - alpha``; a correction changes the p-values that decide
significance, not the intervals. Fixed-horizon p-values are only valid when read once, at a
sample size planned in advance (see :mod:`.sizing`); to look at an experiment while it runs use
:mod:`.sequential`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.inference import (
    adjust_p_values,
    check_alpha,
    mean_difference_interval,
    rate_difference_interval,
    relative_lift,
    t_interval,
    two_proportion_ztest,
    welch_ttest,
    wilson_interval,
)
from jupyter_modelhub.experiments.records import (
    BinarySummary,
    Interval,
    MetricKind,
    NumericSummary,
    Summary,
)
from jupyter_modelhub.models import Record

Correction = Literal["none", "holm", "bonferroni"]
ComparisonStatus = Literal["better", "worse", "no_difference", "not_enough_data"]


@dataclass(frozen=True)
class VariantEstimate(Record):
    """One variant's outcome: ``estimate`` is its rate or mean, ``None`` without data."""

    name: str
    metric: MetricKind
    n: int
    successes: int | None
    estimate: float | None
    ci: Interval | None


@dataclass(frozen=True)
class Comparison(Record):
    """A challenger against the control; differences are ``challenger - control``.

    ``relative_lift`` is ``challenger / control - 1`` (``None`` if the control's estimate is 0).
    ``p_value`` is two-sided and unadjusted; ``adjusted_p_value`` is what decides
    ``significant`` (equal to ``p_value`` without a correction). Statistics are ``None`` when
    they cannot be computed (a side without data; fewer than 2 values for a mean).
    """

    control: str
    challenger: str
    metric: MetricKind
    difference: float | None
    difference_ci: Interval | None
    relative_lift: float | None
    relative_lift_ci: Interval | None
    statistic: float | None
    p_value: float | None
    adjusted_p_value: float | None
    significant: bool
    status: ComparisonStatus
    verdict: str


@dataclass(frozen=True)
class ABReport(Record):
    """The whole experiment: each variant's estimate and each challenger's comparison."""

    metric: MetricKind
    metric_label: str
    control: str
    alpha: float
    confidence_level: float
    correction: Correction
    min_samples: int
    variants: tuple[VariantEstimate, ...]
    comparisons: tuple[Comparison, ...]

    def comparison(self, challenger: str) -> Comparison:
        """The comparison of ``challenger`` against the control."""
        for item in self.comparisons:
            if item.challenger == challenger:
                return item
        raise InvalidArgument(
            f"No challenger named {challenger!r} in this report.",
            hint=f"The challengers are {', '.join(c.challenger for c in self.comparisons)}.",
        )


def estimate_variant(name: str, summary: Summary, confidence: float = 0.95) -> VariantEstimate:
    """A variant's rate with its Wilson interval, or its mean with its t interval."""
    if isinstance(summary, BinarySummary):
        return VariantEstimate(
            name=name,
            metric="rate",
            n=summary.n,
            successes=summary.successes,
            estimate=summary.rate,
            ci=wilson_interval(summary.successes, summary.n, confidence),
        )
    return VariantEstimate(
        name=name,
        metric="mean",
        n=summary.n,
        successes=None,
        estimate=summary.mean if summary.n else None,
        ci=t_interval(summary, confidence),
    )


def _signed(value: float, metric: MetricKind) -> str:
    if metric == "rate":
        return f"{value * 100:+.1f} pp"
    return f"{value:+.4g}"


def _format_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _verdict(
    comparison_status: ComparisonStatus,
    challenger: str,
    metric: MetricKind,
    label: str,
    level: float,
    difference: float,
    interval: Interval,
    lift: float | None,
    p: float,
    correction: Correction,
) -> str:
    lift_text = f" ({lift * 100:+.1f}% relative)" if lift is not None else ""
    p_text = _format_p(p) + ("" if correction == "none" else f" ({correction}-adjusted)")
    detail = (
        f"{_signed(difference, metric)} {label}{lift_text}, "
        f"{level * 100:g}% CI [{_signed(interval.low, metric)}, {_signed(interval.high, metric)}], "
        f"{p_text}"
    )
    if comparison_status == "no_difference":
        return f"no significant difference yet: {detail}"
    return f"challenger {challenger} {comparison_status}: {detail}"


class _Tested(NamedTuple):
    difference: float
    interval: Interval
    lift: tuple[float, Interval] | None
    statistic: float | None
    p_value: float


def _compare(
    control_name: str,
    control: Summary,
    challenger_name: str,
    challenger: Summary,
    confidence: float,
) -> _Tested | None:
    """The comparison's statistics, or ``None`` when they cannot be computed."""
    if isinstance(control, BinarySummary) and isinstance(challenger, BinarySummary):
        if control.n == 0 or challenger.n == 0:
            return None
        p1, p2 = control.successes / control.n, challenger.successes / challenger.n
        test = two_proportion_ztest(control, challenger)
        lift = relative_lift(
            p1, p1 * (1 - p1) / control.n, p2, p2 * (1 - p2) / challenger.n, confidence
        )
        interval = rate_difference_interval(control, challenger, confidence)
        return _Tested(p2 - p1, interval, lift, test.statistic, test.p_value)
    if isinstance(control, NumericSummary) and isinstance(challenger, NumericSummary):
        if control.n < 2 or challenger.n < 2:
            return None
        test = welch_ttest(control, challenger)
        lift = relative_lift(
            control.mean,
            control.variance / control.n,
            challenger.mean,
            challenger.variance / challenger.n,
            confidence,
        )
        interval = mean_difference_interval(control, challenger, confidence)
        return _Tested(challenger.mean - control.mean, interval, lift, test.statistic, test.p_value)
    raise InvalidArgument(
        f"Variants {control_name!r} and {challenger_name!r} summarise different kinds of outcome.",
        hint="Use BinarySummary for every variant or NumericSummary for every variant.",
    )


def ab_report(
    variants: Mapping[str, Summary],
    control: str,
    *,
    alpha: float = 0.05,
    correction: Correction = "none",
    min_samples: int = 100,
    higher_is_better: bool = True,
    metric_label: str | None = None,
) -> ABReport:
    """Compare every challenger in ``variants`` with the ``control`` variant.

    Args:
        variants: variant name -> its summary (all ``BinarySummary`` or all ``NumericSummary``),
            control included; the report keeps this order.
        control: the champion's name in ``variants``.
        alpha: significance level; intervals are at ``1 - alpha``.
        correction: ``"holm"`` or ``"bonferroni"`` to control the family-wise error rate across
            several challengers; ``"none"`` for one challenger or exploratory reading.
        min_samples: below this many observations on either side a comparison's status is
            ``not_enough_data`` (its statistics are still given when computable).
        higher_is_better: whether a positive difference is "better" (False for error rates,
            latency, cost).
        metric_label: the words used in verdicts ("conversion", "revenue"); defaults to
            "rate" or "mean".

    Raises:
        InvalidArgument: fewer than two variants, unknown control, mixed summary kinds, or a bad
            alpha/correction/min_samples.
    """
    check_alpha(alpha)
    if correction not in ("none", "holm", "bonferroni"):
        raise InvalidArgument(
            f"Unknown multiple-testing correction {correction!r}.",
            hint="Use 'none', 'holm' or 'bonferroni'.",
        )
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 0:
        raise InvalidArgument(f"min_samples must be a whole number >= 0, not {min_samples!r}.")
    if control not in variants:
        raise InvalidArgument(
            f"The control {control!r} is not among the variants.",
            hint=f"The variants are {', '.join(map(repr, variants))}.",
        )
    if len(variants) < 2:
        raise InvalidArgument(
            "An A/B report needs the control and at least one challenger.",
            hint="Add a challenger's summary to the variants.",
        )
    kinds = {type(summary) for summary in variants.values()}
    if len(kinds) != 1:
        raise InvalidArgument(
            "The variants summarise different kinds of outcome.",
            hint="Use BinarySummary for every variant or NumericSummary for every variant.",
        )
    metric: MetricKind = "rate" if kinds == {BinarySummary} else "mean"
    label = metric_label or metric
    confidence = 1.0 - alpha
    base = variants[control]
    challengers = [name for name in variants if name != control]
    raw = {name: _compare(control, base, name, variants[name], confidence) for name in challengers}

    tested = {name: result for name, result in raw.items() if result is not None}
    adjusted = dict(
        zip(
            tested,
            adjust_p_values([result.p_value for result in tested.values()], correction),
            strict=True,
        )
    )

    needed = max(min_samples, 1 if metric == "rate" else 2)
    comparisons = []
    for name in challengers:
        result = raw[name]
        enough = min(base.n, variants[name].n) >= needed
        short = name if variants[name].n < base.n else control
        if result is None:
            comparisons.append(
                Comparison(
                    control=control,
                    challenger=name,
                    metric=metric,
                    difference=None,
                    difference_ci=None,
                    relative_lift=None,
                    relative_lift_ci=None,
                    statistic=None,
                    p_value=None,
                    adjusted_p_value=None,
                    significant=False,
                    status="not_enough_data",
                    verdict=_not_enough(short, variants[short].n, needed),
                )
            )
            continue
        difference, interval, lift, statistic, p = result
        p_adjusted = adjusted[name]
        significant = enough and p_adjusted < alpha
        status: ComparisonStatus
        if not enough:
            status = "not_enough_data"
        elif not significant:
            status = "no_difference"
        else:
            status = "better" if (difference > 0) == higher_is_better else "worse"
        if status == "not_enough_data":
            verdict = _not_enough(short, variants[short].n, needed)
        else:
            verdict = _verdict(
                status,
                name,
                metric,
                label,
                confidence,
                difference,
                interval,
                lift[0] if lift else None,
                p_adjusted,
                correction,
            )
        comparisons.append(
            Comparison(
                control=control,
                challenger=name,
                metric=metric,
                difference=difference,
                difference_ci=interval,
                relative_lift=lift[0] if lift else None,
                relative_lift_ci=lift[1] if lift else None,
                statistic=statistic if statistic is None or math.isfinite(statistic) else None,
                p_value=p,
                adjusted_p_value=p_adjusted,
                significant=significant,
                status=status,
                verdict=verdict,
            )
        )
    return ABReport(
        metric=metric,
        metric_label=label,
        control=control,
        alpha=alpha,
        confidence_level=confidence,
        correction=correction,
        min_samples=min_samples,
        variants=tuple(estimate_variant(name, s, confidence) for name, s in variants.items()),
        comparisons=tuple(comparisons),
    )


def _not_enough(name: str, n: int, needed: int) -> str:
    return f"not enough data: n<{needed} ({name} has {n})"
