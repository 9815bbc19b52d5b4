"""How many requests, and how long, an A/B test needs before it is read (fixed horizon).

The method is the normal approximation of ``statsmodels.stats.power.NormalIndPower``: with a
standardised effect ``e`` and ``n_eff = 1 / (1/n_control + 1/n_challenger)`` the power of the
two-sided test at level ``alpha`` is::

    power = Φ(e·sqrt(n_eff) - z_{1-alpha/2}) + Φ(-e·sqrt(n_eff) - z_{1-alpha/2})

and we solve it for ``n_control`` (then round up). The standardised effect is Cohen's ``h``
for rates, ``2·asin(sqrt(p₂)) - 2·asin(sqrt(p₁))`` (``proportion_effectsize``, the
variance-stabilising arcsine transform), and Cohen's ``d = mde / std`` for means. Results equal
``ceil(NormalIndPower().solve_power(...))`` with the same inputs.

With several challengers, ``correction="bonferroni"`` divides alpha by their number, matching
the Bonferroni-corrected A/B report; the same plan suffices for Holm's correction, which is
never less powerful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import optimize, stats

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.inference import check_alpha
from jupyter_modelhub.experiments.records import MetricKind
from jupyter_modelhub.models import Record

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class SampleSizePlan(Record):
    """Requests each variant needs, and how long that takes at the given traffic.

    ``alpha`` is the per-comparison level actually used (after a Bonferroni correction);
    ``shares`` are the traffic fractions, control first. Durations are ``None`` without a
    traffic rate.
    """

    metric: MetricKind
    baseline: float
    target: float
    absolute_effect: float
    effect_size: float
    alpha: float
    power: float
    n_variants: int
    shares: tuple[float, ...]
    requests_control: int
    requests_per_challenger: int
    total_requests: int
    duration_seconds: float | None
    duration_days: float | None
    method: str
    summary: str


def normal_power(effect_size: float, n_control: float, ratio: float, alpha: float) -> float:
    """Power of the two-sided normal test (``NormalIndPower().power``)."""
    n_effective = 1.0 / (1.0 / n_control + 1.0 / (n_control * ratio))
    crit = float(stats.norm.isf(alpha / 2.0))
    shift = abs(effect_size) * math.sqrt(n_effective)
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def solve_n_control(effect_size: float, alpha: float, power: float, ratio: float) -> float:
    """The (fractional) control sample size reaching ``power``; challengers get ``ratio`` times it."""
    crit = float(stats.norm.isf(alpha / 2.0))
    # the one-tail closed form is an upper bound: the other tail only adds power
    upper = ((crit + float(stats.norm.isf(1.0 - power))) / abs(effect_size)) ** 2 * (1 + 1 / ratio)
    return float(
        optimize.brentq(
            lambda n: normal_power(effect_size, n, ratio, alpha) - power,
            upper * 1e-9,
            upper * (1 + 1e-9),
            xtol=1e-12,
            rtol=1e-15,
        )
    )


def _duration_words(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * SECONDS_PER_DAY:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / SECONDS_PER_DAY:.1f} days"


def _plan(
    metric: MetricKind,
    baseline: float,
    target: float,
    effect_size: float,
    alpha: float,
    power: float,
    n_variants: int,
    control_share: float | None,
    correction: Literal["none", "bonferroni"],
    requests_per_second: float | None,
    requests_per_day: float | None,
    method: str,
) -> SampleSizePlan:
    check_alpha(alpha)
    if not alpha < power < 1.0:
        raise InvalidArgument(
            f"power must lie between alpha ({alpha}) and 1, not {power}.",
            hint="Use for example power=0.8.",
        )
    if isinstance(n_variants, bool) or not isinstance(n_variants, int) or n_variants < 2:
        raise InvalidArgument(
            f"n_variants must be a whole number >= 2 (control included), not {n_variants!r}."
        )
    if correction not in ("none", "bonferroni"):
        raise InvalidArgument(
            f"Unknown correction {correction!r} for planning.", hint="Use 'none' or 'bonferroni'."
        )
    if control_share is None:
        control_share = 1.0 / n_variants
    if not 0.0 < control_share < 1.0:
        raise InvalidArgument(
            f"control_share must lie strictly between 0 and 1, not {control_share}.",
            hint="Leave it unset for an equal split.",
        )
    if requests_per_second is not None and requests_per_day is not None:
        raise InvalidArgument(
            "Give the traffic as requests_per_second or requests_per_day, not both."
        )
    rate = (
        requests_per_day / SECONDS_PER_DAY if requests_per_day is not None else requests_per_second
    )
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise InvalidArgument(f"The traffic rate must be a positive number, not {rate}.")
    challenger_share = (1.0 - control_share) / (n_variants - 1)
    per_test_alpha = alpha / (n_variants - 1) if correction == "bonferroni" else alpha
    ratio = challenger_share / control_share
    n_control = solve_n_control(effect_size, per_test_alpha, power, ratio)
    requests_control = math.ceil(n_control)
    requests_challenger = math.ceil(n_control * ratio)
    total = requests_control + (n_variants - 1) * requests_challenger
    seconds = (
        max(requests_control / control_share, requests_challenger / challenger_share) / rate
        if rate is not None
        else None
    )
    summary = (
        f"{requests_control:,} requests for the control and {requests_challenger:,} per challenger "
        f"({total:,} in all) to detect {baseline:.4g} -> {target:.4g} with power {power:g} "
        f"at alpha {per_test_alpha:.3g}"
    )
    if seconds is not None:
        summary += f"; about {_duration_words(seconds)} at the given traffic"
    return SampleSizePlan(
        metric=metric,
        baseline=baseline,
        target=target,
        absolute_effect=target - baseline,
        effect_size=effect_size,
        alpha=per_test_alpha,
        power=power,
        n_variants=n_variants,
        shares=(control_share,) + (challenger_share,) * (n_variants - 1),
        requests_control=requests_control,
        requests_per_challenger=requests_challenger,
        total_requests=total,
        duration_seconds=seconds,
        duration_days=seconds / SECONDS_PER_DAY if seconds is not None else None,
        method=method,
        summary=summary,
    )


def _target(baseline: float, mde: float, relative: bool) -> float:
    if not math.isfinite(mde) or mde == 0:
        raise InvalidArgument(
            f"The minimum detectable effect must be a non-zero number, not {mde}.",
            hint="For example mde=0.01 (absolute) or mde=0.05 with relative=True.",
        )
    if relative and baseline == 0:
        raise InvalidArgument(
            "A relative effect needs a non-zero baseline.", hint="Give mde as an absolute change."
        )
    return baseline * (1.0 + mde) if relative else baseline + mde


def sample_size_for_rate(
    baseline_rate: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    n_variants: int = 2,
    control_share: float | None = None,
    correction: Literal["none", "bonferroni"] = "none",
    requests_per_second: float | None = None,
    requests_per_day: float | None = None,
) -> SampleSizePlan:
    """Requests needed to detect a change of a rate from ``baseline_rate`` by ``mde``.

    Args:
        baseline_rate: the control's expected rate, strictly between 0 and 1.
        mde: the minimum detectable effect: an absolute change (0.01 = one percentage point),
            or relative to the baseline when ``relative`` (0.05 = +5%). May be negative.
        alpha, power: the two-sided test's level and the wanted power.
        n_variants: how many variants, control included (A/B = 2).
        control_share: the control's share of traffic; challengers split the rest equally.
            Default: an equal split.
        correction: ``"bonferroni"`` to plan for the corrected comparison of each challenger.
        requests_per_second, requests_per_day: traffic entering the experiment (all variants
            together), to compute the expected duration.

    Raises:
        InvalidArgument: a rate outside (0, 1), a zero effect, or bad alpha/power/shares/traffic.
    """
    if not 0.0 < baseline_rate < 1.0:
        raise InvalidArgument(
            f"baseline_rate must lie strictly between 0 and 1, not {baseline_rate}.",
            hint="Give the control's rate as a fraction, e.g. 0.12 for 12%.",
        )
    target = _target(baseline_rate, mde, relative)
    if not 0.0 < target < 1.0:
        raise InvalidArgument(
            f"The rate to detect, {target:.4g}, lies outside (0, 1).",
            hint="Use a smaller minimum detectable effect.",
        )
    effect = 2.0 * math.asin(math.sqrt(target)) - 2.0 * math.asin(math.sqrt(baseline_rate))
    return _plan(
        "rate",
        baseline_rate,
        target,
        effect,
        alpha,
        power,
        n_variants,
        control_share,
        correction,
        requests_per_second,
        requests_per_day,
        "normal approximation with Cohen's h (arcsine), as statsmodels NormalIndPower",
    )


def sample_size_for_mean(
    baseline_mean: float,
    baseline_std: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    n_variants: int = 2,
    control_share: float | None = None,
    correction: Literal["none", "bonferroni"] = "none",
    requests_per_second: float | None = None,
    requests_per_day: float | None = None,
) -> SampleSizePlan:
    """Requests needed to detect a change of a mean by ``mde`` (Cohen's ``d = mde / std``).

    ``baseline_std`` is one observation's standard deviation (assumed equal in every variant);
    the other arguments are those of :func:`sample_size_for_rate`.

    Raises:
        InvalidArgument: a non-positive std, a zero effect, or bad alpha/power/shares/traffic.
    """
    if not (math.isfinite(baseline_std) and baseline_std > 0):
        raise InvalidArgument(
            f"baseline_std must be a positive number, not {baseline_std}.",
            hint="Estimate it from past traffic, e.g. NumericSummary.from_values(...).std.",
        )
    if not math.isfinite(baseline_mean):
        raise InvalidArgument(f"baseline_mean must be a finite number, not {baseline_mean}.")
    target = _target(baseline_mean, mde, relative)
    return _plan(
        "mean",
        baseline_mean,
        target,
        (target - baseline_mean) / baseline_std,
        alpha,
        power,
        n_variants,
        control_share,
        correction,
        requests_per_second,
        requests_per_day,
        "normal approximation with Cohen's d, as statsmodels NormalIndPower",
    )
