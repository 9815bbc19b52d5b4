"""Fixed-horizon tests and intervals from sufficient statistics.

The formulas follow the textbooks and are checked against scipy and statsmodels in the tests:

- a rate's interval is Wilson's score interval (``proportion_confint(method="wilson")``);
- a mean's interval is Student's t with ``n - 1`` degrees of freedom;
- two rates: the pooled two-proportion z-test (``proportions_ztest``) and the unpooled Wald
  interval of the difference (``confint_proportions_2indep(method="wald")``);
- two means: Welch's t-test and interval (``ttest_ind(equal_var=False)``,
  ``CompareMeans.tconfint_diff(usevar="unequal")``);
- relative lift ``challenger / control - 1``: the delta method on the ratio of two independent
  estimates, with a normal interval.

Differences are always ``challenger - control``. Degenerate samples get documented answers,
never NaN: see :func:`two_proportion_ztest` and :func:`welch_ttest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.records import BinarySummary, Interval, NumericSummary

Alternative = Literal["two-sided", "larger", "smaller"]
_ALTERNATIVES = ("two-sided", "larger", "smaller")


@dataclass(frozen=True)
class TestOutcome:
    """A test statistic and its p-value (``statistic`` is ``None`` when it would be infinite)."""

    statistic: float | None
    p_value: float


def check_confidence(confidence: float) -> float:
    """``confidence`` if it lies strictly between 0 and 1, else a clear error."""
    if not 0.0 < float(confidence) < 1.0:
        raise InvalidArgument(
            f"The confidence level must lie strictly between 0 and 1, not {confidence}.",
            hint="Use for example 0.95 (alpha=0.05).",
        )
    return float(confidence)


def check_alpha(alpha: float) -> float:
    """``alpha`` if it lies strictly between 0 and 1, else a clear error."""
    if not 0.0 < float(alpha) < 1.0:
        raise InvalidArgument(
            f"alpha must lie strictly between 0 and 1, not {alpha}.",
            hint="Use for example alpha=0.05 for 95% confidence.",
        )
    return float(alpha)


def _p_from_z(z: float, alternative: Alternative) -> float:
    if alternative == "two-sided":
        return float(2.0 * stats.norm.sf(abs(z)))
    if alternative == "larger":
        return float(stats.norm.sf(z))
    if alternative == "smaller":
        return float(stats.norm.cdf(z))
    raise InvalidArgument(
        f"Unknown alternative {alternative!r}.", hint=f"Use one of {', '.join(_ALTERNATIVES)}."
    )


def _p_from_t(t: float, df: float, alternative: Alternative) -> float:
    if alternative == "two-sided":
        return float(2.0 * stats.t.sf(abs(t), df))
    if alternative == "larger":
        return float(stats.t.sf(t, df))
    if alternative == "smaller":
        return float(stats.t.cdf(t, df))
    raise InvalidArgument(
        f"Unknown alternative {alternative!r}.", hint=f"Use one of {', '.join(_ALTERNATIVES)}."
    )


def _degenerate(difference: float, alternative: Alternative) -> TestOutcome:
    """The answer when the standard error is exactly zero: the data have no spread at all."""
    if difference == 0.0:
        return TestOutcome(statistic=0.0, p_value=1.0)
    supports = {
        "two-sided": True,
        "larger": difference > 0,
        "smaller": difference < 0,
    }[alternative]
    return TestOutcome(statistic=None, p_value=0.0 if supports else 1.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval | None:
    """Wilson's score interval for a proportion; ``None`` when ``n == 0``.

    Unlike the Wald interval it stays inside [0, 1] and is not degenerate at 0 or n successes.
    """
    check_confidence(confidence)
    if n == 0:
        return None
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # The interval always contains p; min/max only undo rounding at p = 0 or 1.
    return Interval(low=max(0.0, min(p, centre - half)), high=min(1.0, max(p, centre + half)))


def t_interval(summary: NumericSummary, confidence: float = 0.95) -> Interval | None:
    """Student's t interval for a mean; ``None`` when ``n < 2`` (no variance to use)."""
    check_confidence(confidence)
    if summary.n < 2:
        return None
    half = float(stats.t.isf((1.0 - confidence) / 2.0, summary.n - 1)) * math.sqrt(
        summary.variance / summary.n
    )
    return Interval(low=summary.mean - half, high=summary.mean + half)


def two_proportion_ztest(
    control: BinarySummary, challenger: BinarySummary, alternative: Alternative = "two-sided"
) -> TestOutcome:
    """Pooled two-proportion z-test of ``challenger rate - control rate``.

    Equals ``statsmodels.stats.proportion.proportions_ztest([s_chal, s_ctrl], [n_chal, n_ctrl])``.
    When the pooled rate is 0 or 1 (every outcome identical) the rates are equal and the
    answer is ``statistic=0, p_value=1``.

    Raises:
        InvalidArgument: a side has ``n == 0``.
    """
    if control.n == 0 or challenger.n == 0:
        raise InvalidArgument(
            "A two-proportion test needs at least one observation on each side.",
            hint="Wait for traffic to reach both variants.",
        )
    p1, p2 = control.successes / control.n, challenger.successes / challenger.n
    pooled = (control.successes + challenger.successes) / (control.n + challenger.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / challenger.n))
    if se == 0.0:
        return _degenerate(p2 - p1, alternative)
    z = (p2 - p1) / se
    return TestOutcome(statistic=z, p_value=_p_from_z(z, alternative))


def rate_difference_interval(
    control: BinarySummary, challenger: BinarySummary, confidence: float = 0.95
) -> Interval:
    """Wald (unpooled) interval of ``challenger rate - control rate``.

    Equals ``confint_proportions_2indep(s_chal, n_chal, s_ctrl, n_ctrl, method="wald")``; it
    collapses to a point when both rates are 0 or 1.
    """
    check_confidence(confidence)
    p1, p2 = control.successes / control.n, challenger.successes / challenger.n
    se = math.sqrt(p1 * (1 - p1) / control.n + p2 * (1 - p2) / challenger.n)
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    return Interval(low=p2 - p1 - z * se, high=p2 - p1 + z * se)


def welch_degrees_of_freedom(control: NumericSummary, challenger: NumericSummary) -> float:
    """Welch-Satterthwaite degrees of freedom (``n1 + n2 - 2`` if both variances are zero)."""
    a, b = control.variance / control.n, challenger.variance / challenger.n
    if a + b == 0.0:
        return float(control.n + challenger.n - 2)
    share_a, share_b = a / (a + b), b / (a + b)  # scaled so tiny variances cannot underflow
    return 1.0 / (share_a**2 / (control.n - 1) + share_b**2 / (challenger.n - 1))


def _check_two_means(control: NumericSummary, challenger: NumericSummary) -> None:
    if control.n < 2 or challenger.n < 2:
        raise InvalidArgument(
            f"Welch's t-test needs at least 2 observations on each side "
            f"(control has {control.n}, challenger {challenger.n}).",
            hint="Wait for more traffic.",
        )


def welch_ttest(
    control: NumericSummary, challenger: NumericSummary, alternative: Alternative = "two-sided"
) -> TestOutcome:
    """Welch's unequal-variance t-test of ``challenger mean - control mean``.

    Equals ``scipy.stats.ttest_ind(challenger, control, equal_var=False)``. When both variances
    are zero the answer is exact: ``p_value=1`` for equal means, otherwise ``p_value=0`` (and
    ``statistic=None``) in the direction of the difference.

    Raises:
        InvalidArgument: a side has fewer than 2 observations.
    """
    _check_two_means(control, challenger)
    se = math.sqrt(control.variance / control.n + challenger.variance / challenger.n)
    difference = challenger.mean - control.mean
    if se == 0.0:
        return _degenerate(difference, alternative)
    t = difference / se
    return TestOutcome(
        statistic=t,
        p_value=_p_from_t(t, welch_degrees_of_freedom(control, challenger), alternative),
    )


def mean_difference_interval(
    control: NumericSummary, challenger: NumericSummary, confidence: float = 0.95
) -> Interval:
    """Welch's t interval of ``challenger mean - control mean``.

    Equals ``CompareMeans(challenger, control).tconfint_diff(usevar="unequal")``.

    Raises:
        InvalidArgument: a side has fewer than 2 observations.
    """
    check_confidence(confidence)
    _check_two_means(control, challenger)
    se = math.sqrt(control.variance / control.n + challenger.variance / challenger.n)
    df = welch_degrees_of_freedom(control, challenger)
    half = float(stats.t.isf((1.0 - confidence) / 2.0, df)) * se
    difference = challenger.mean - control.mean
    return Interval(low=difference - half, high=difference + half)


def relative_lift(
    control_estimate: float,
    control_variance_of_estimate: float,
    challenger_estimate: float,
    challenger_variance_of_estimate: float,
    confidence: float = 0.95,
) -> tuple[float, Interval] | None:
    """``challenger / control - 1`` and its delta-method normal interval.

    With independent estimates ``a`` (control) and ``b`` (challenger),
    ``Var(b / a) ≈ Var(b) / a² + b² Var(a) / a⁴``. ``None`` when the control estimate is 0
    (the lift is undefined) or so close to 0 that the ratio overflows.
    """
    check_confidence(confidence)
    a, b = control_estimate, challenger_estimate
    if a == 0.0:
        return None
    try:
        ratio = b / a
        variance = challenger_variance_of_estimate + ratio * ratio * control_variance_of_estimate
        se = math.sqrt(variance) / abs(a)
    except OverflowError:
        return None  # a control estimate so close to 0 that the ratio overflows
    if not math.isfinite(se):
        return None
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    return ratio - 1.0, Interval(low=ratio - 1.0 - z * se, high=ratio - 1.0 + z * se)


def adjust_p_values(
    p_values: list[float], method: Literal["none", "holm", "bonferroni"]
) -> list[float]:
    """p-values adjusted for testing several challengers against one control.

    ``bonferroni`` multiplies by the number of tests; ``holm`` is Holm's step-down method (same
    family-wise error guarantee, never less powerful). Results are capped at 1 and match
    ``statsmodels.stats.multitest.multipletests``.
    """
    m = len(p_values)
    if method == "none":
        return list(p_values)
    if method == "bonferroni":
        return [min(1.0, p * m) for p in p_values]
    if method == "holm":
        order = sorted(range(m), key=lambda i: p_values[i])
        adjusted = [0.0] * m
        running = 0.0
        for rank, index in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[index]))
            adjusted[index] = running
        return adjusted
    raise InvalidArgument(
        f"Unknown multiple-testing correction {method!r}.",
        hint="Use 'none', 'holm' or 'bonferroni'.",
    )
