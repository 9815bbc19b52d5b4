"""The sample-size and duration calculator against statsmodels and a hand computation."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.sizing import sample_size_for_mean, sample_size_for_rate


def _statsmodels_n(effect: float, alpha: float, power: float, ratio: float = 1.0) -> float:
    return float(
        NormalIndPower().solve_power(
            effect_size=effect, alpha=alpha, power=power, ratio=ratio, alternative="two-sided"
        )
    )


@pytest.mark.parametrize(
    "baseline,mde,relative,alpha,power",
    [
        (0.10, 0.02, False, 0.05, 0.8),
        (0.10, -0.02, False, 0.05, 0.8),
        (0.03, 0.10, True, 0.05, 0.9),
        (0.50, 0.01, False, 0.01, 0.8),
        (0.002, 0.5, True, 0.1, 0.95),
        (0.9, 0.05, False, 0.05, 0.5),
    ],
)
def test_rates_equal_statsmodels(baseline, mde, relative, alpha, power) -> None:
    plan = sample_size_for_rate(baseline, mde, relative=relative, alpha=alpha, power=power)
    target = baseline * (1 + mde) if relative else baseline + mde
    expected = _statsmodels_n(proportion_effectsize(target, baseline), alpha, power)
    assert plan.requests_control == math.ceil(expected)
    assert plan.requests_per_challenger == math.ceil(expected)
    assert plan.total_requests == 2 * math.ceil(expected)
    assert plan.target == pytest.approx(target)


def test_textbook_example_by_hand() -> None:
    """10% -> 12%, alpha 0.05, power 0.8: n = 2 (z_.975 + z_.8)² / h² per arm (other tail ~0)."""
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))
    by_hand = 2 * (stats.norm.isf(0.025) + stats.norm.isf(0.2)) ** 2 / h**2
    assert by_hand == pytest.approx(3834.6, abs=0.1)
    plan = sample_size_for_rate(0.10, 0.02)
    assert plan.requests_control == 3835 == math.ceil(by_hand)
    assert plan.effect_size == pytest.approx(h)


@pytest.mark.parametrize(
    "mean,std,mde,relative",
    [(100.0, 20.0, 2.0, False), (0.25, 0.1, -0.05, True), (5.0, 1.0, 0.5, False)],
)
def test_means_equal_statsmodels(mean, std, mde, relative) -> None:
    plan = sample_size_for_mean(mean, std, mde, relative=relative)
    absolute = mean * mde if relative else mde
    assert plan.requests_control == math.ceil(_statsmodels_n(absolute / std, 0.05, 0.8))
    assert plan.absolute_effect == pytest.approx(absolute)


def test_unequal_split_several_variants_and_bonferroni() -> None:
    plan = sample_size_for_rate(
        0.1, 0.02, n_variants=4, control_share=0.4, correction="bonferroni", requests_per_day=5_000
    )
    ratio = 0.2 / 0.4
    expected = _statsmodels_n(proportion_effectsize(0.12, 0.1), 0.05 / 3, 0.8, ratio=ratio)
    assert plan.alpha == pytest.approx(0.05 / 3)
    assert plan.shares == pytest.approx((0.4, 0.2, 0.2, 0.2))
    assert plan.requests_control == math.ceil(expected)
    assert plan.requests_per_challenger == math.ceil(expected * ratio)
    assert plan.total_requests == plan.requests_control + 3 * plan.requests_per_challenger
    days = max(plan.requests_control / 0.4, plan.requests_per_challenger / 0.2) / 5_000
    assert plan.duration_days == pytest.approx(days)
    assert plan.duration_seconds == pytest.approx(days * 86_400)
    assert f"about {days:.1f} days" in plan.summary
    json.dumps(plan.to_dict(), allow_nan=False)


def test_duration_from_requests_per_second() -> None:
    plan = sample_size_for_rate(0.10, 0.02, requests_per_second=2.0)
    assert plan.duration_seconds == pytest.approx(2 * 3835 / 2.0)
    assert "hours" in plan.summary
    assert sample_size_for_rate(0.10, 0.02).duration_seconds is None


@pytest.mark.parametrize(
    "call",
    [
        lambda: sample_size_for_rate(0.0, 0.01),
        lambda: sample_size_for_rate(1.0, 0.01),
        lambda: sample_size_for_rate(0.95, 0.1),
        lambda: sample_size_for_rate(0.1, 0.0),
        lambda: sample_size_for_rate(0.1, 0.01, power=0.01),
        lambda: sample_size_for_rate(0.1, 0.01, alpha=0.0),
        lambda: sample_size_for_rate(0.1, 0.01, n_variants=1),
        lambda: sample_size_for_rate(0.1, 0.01, control_share=1.0),
        lambda: sample_size_for_rate(0.1, 0.01, requests_per_second=1, requests_per_day=1),
        lambda: sample_size_for_rate(0.1, 0.01, requests_per_second=0),
        lambda: sample_size_for_mean(0.0, 1.0, 0.1, relative=True),
        lambda: sample_size_for_mean(1.0, 0.0, 0.1),
    ],
)
def test_bad_plans_raise_invalid_argument(call) -> None:
    with pytest.raises(InvalidArgument):
        call()
