"""Always-valid inference (mSPRT): formulas by hand, error control under peeking, power."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.records import BinarySummary, NumericSummary
from jupyter_modelhub.experiments.sequential import (
    DEFAULT_MIXING_EFFECT,
    always_valid_half_width,
    always_valid_p_values,
    log_likelihood_ratio,
    sequential_test,
)

ALPHA = 0.05
EXPERIMENTS = 2000
LOOKS = 100
BLOCK = 100  # observations per variant between looks: peeking every 100 up to 10,000


def _binomial_tolerance(n: int, alpha: float = ALPHA) -> float:
    """Three binomial standard errors of an estimated rate alpha from n experiments."""
    return 3.0 * math.sqrt(alpha * (1 - alpha) / n)


def _simulate_rates(rng: np.random.Generator, p_control: float, p_challenger: float, runs: int):
    """Cumulative successes after each look, shape (runs, LOOKS), and n per variant per look."""
    n = BLOCK * np.arange(1, LOOKS + 1)
    control = rng.binomial(BLOCK, p_control, size=(runs, LOOKS)).cumsum(axis=1)
    challenger = rng.binomial(BLOCK, p_challenger, size=(runs, LOOKS)).cumsum(axis=1)
    return control, challenger, n


def _rate_statistics(control, challenger, n):
    difference = (challenger - control) / n
    pooled = (control + challenger) / (2 * n)
    variance = pooled * (1 - pooled) * (2 / n)
    # the default mixing variance, fixed at the first look of each experiment
    tau2 = DEFAULT_MIXING_EFFECT**2 * pooled[:, :1] * (1 - pooled[:, :1])
    return difference, variance, tau2


def test_likelihood_ratio_by_hand() -> None:
    d, s2, t2 = 0.02, 1e-4, 4e-4
    expected = math.sqrt(s2 / (s2 + t2)) * math.exp(t2 * d * d / (2 * s2 * (s2 + t2)))
    assert float(np.exp(log_likelihood_ratio(d, s2, t2))) == pytest.approx(expected, rel=1e-12)
    # the interval is exactly the set where the ratio stays below 1/alpha
    h = always_valid_half_width(s2, t2, ALPHA)
    assert float(log_likelihood_ratio(h, s2, t2)) == pytest.approx(math.log(1 / ALPHA), rel=1e-12)
    assert always_valid_half_width(0.0, t2, ALPHA) == 0.0


def test_p_values_are_running_minima_in_unit_interval() -> None:
    p = always_valid_p_values([0.0, 0.03, 0.0, 0.1], [1e-3, 1e-3, 1e-3, 0.0], 1e-3)
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) <= 0)
    assert p[0] == 1.0 and p[-1] == 0.0  # zero variance and a difference: exact evidence
    assert always_valid_p_values([0.0], [0.0], 1e-3)[0] == 1.0


def test_false_positive_rate_under_continuous_peeking() -> None:
    """Under no difference, peeking 100 times: mSPRT stays at alpha, the naive z-test does not."""
    rng = np.random.default_rng(20260101)
    control, challenger, n = _simulate_rates(rng, 0.1, 0.1, EXPERIMENTS)
    difference, variance, tau2 = _rate_statistics(control, challenger, n)

    always_valid = always_valid_p_values(difference, variance, tau2)[:, -1]
    msprt_rate = float(np.mean(always_valid < ALPHA))

    naive_p = 2 * stats.norm.sf(np.abs(difference) / np.sqrt(variance))
    naive_rate = float(np.mean((naive_p < ALPHA).any(axis=1)))

    print(f"false-positive rate: mSPRT {msprt_rate:.4f}, naive peeking {naive_rate:.4f}")
    assert msprt_rate <= ALPHA + _binomial_tolerance(EXPERIMENTS)
    assert naive_rate > 3 * ALPHA
    # the fixed-horizon test read once, at the end, is fine: the problem is the peeking
    assert float(np.mean(naive_p[:, -1] < ALPHA)) <= ALPHA + _binomial_tolerance(EXPERIMENTS)


def test_false_positive_rate_for_means_under_peeking() -> None:
    """The same guarantee for a skewed numeric outcome (exponential, like latency or revenue)."""
    rng = np.random.default_rng(7)
    runs = 1000
    sums = np.zeros((2, runs))
    squares = np.zeros((2, runs))
    p_looks = np.ones((runs, LOOKS))
    tau2 = None
    for look in range(LOOKS):
        block = rng.exponential(2.0, size=(2, runs, BLOCK))
        sums += block.sum(axis=2)
        squares += (block * block).sum(axis=2)
        n = BLOCK * (look + 1)
        means = sums / n
        variances = (squares - n * means * means) / (n - 1)
        if tau2 is None:
            tau2 = DEFAULT_MIXING_EFFECT**2 * variances.mean(axis=0)
        log_lr = log_likelihood_ratio(means[1] - means[0], variances.sum(axis=0) / n, tau2)
        p_looks[:, look] = np.minimum(1.0, np.exp(-log_lr))
    rate = float(np.mean(p_looks.min(axis=1) < ALPHA))
    print(f"false-positive rate (means): mSPRT {rate:.4f}")
    assert rate <= ALPHA + _binomial_tolerance(runs)


def test_power_with_a_real_effect() -> None:
    rng = np.random.default_rng(3)
    runs = 500
    control, challenger, n = _simulate_rates(rng, 0.10, 0.12, runs)
    difference, variance, tau2 = _rate_statistics(control, challenger, n)
    p = always_valid_p_values(difference, variance, tau2)
    rejected = p[:, -1] < ALPHA
    print(f"power at n=10,000 per variant (10% vs 12%): {rejected.mean():.3f}")
    assert rejected.mean() > 0.8
    # and it stops early on most of them
    first_rejection = np.argmax(p < ALPHA, axis=1)[rejected]
    assert np.median(first_rejection) < LOOKS - 1


def test_sequential_test_looks_match_the_vectorised_path() -> None:
    rng = np.random.default_rng(11)
    control, challenger, n = _simulate_rates(rng, 0.1, 0.13, 1)
    difference, variance, tau2 = _rate_statistics(control, challenger, n)
    expected = always_valid_p_values(difference, variance, tau2)[0]
    result = None
    for look in range(20):
        result = sequential_test(
            BinarySummary(int(n[look]), int(control[0, look])),
            BinarySummary(int(n[look]), int(challenger[0, look])),
            previous=result,
        )
        assert result.p_value == pytest.approx(expected[look], rel=1e-9, abs=1e-300)
        assert result.looks == look + 1
    assert result is not None and result.mixing_variance == pytest.approx(float(tau2[0, 0]))


def test_interval_is_intersected_and_contains_estimate_at_first_look() -> None:
    first = sequential_test(
        NumericSummary(200, 10.0, 4.0), NumericSummary(200, 10.3, 4.0), mixing_variance=0.04
    )
    assert first.ci is not None and first.difference is not None
    assert first.difference in first.ci
    second = sequential_test(
        NumericSummary(400, 10.0, 4.0),
        NumericSummary(400, 10.1, 4.0),
        previous=first,
    )
    assert second.mixing_variance == 0.04
    assert second.ci is not None
    assert first.ci.low <= second.ci.low and second.ci.high <= first.ci.high
    assert second.p_value <= first.p_value
    # duality at one look: p < alpha exactly when 0 is outside the interval (Welch variance)
    assert (first.p_value < 0.05) == (0.0 not in first.ci)


def test_sequential_verdicts_and_json() -> None:
    early = sequential_test(BinarySummary(50, 5), BinarySummary(60, 9))
    assert early.verdict == "not enough data: n<100 (control has 50)"
    assert (early.p_value, early.ci, early.rejected, early.mixing_variance) == (
        1.0,
        None,
        False,
        None,
    )
    strong = sequential_test(
        BinarySummary(20_000, 2000), BinarySummary(20_000, 2400), metric_label="conversion"
    )
    assert strong.rejected
    assert strong.verdict.startswith("challenger challenger better: +2.0 pp conversion")
    assert strong.verdict.endswith("p<0.001; safe to stop")
    identical = sequential_test(BinarySummary(500, 0), BinarySummary(500, 0))
    assert identical.verdict == "not enough data: every outcome so far is identical"
    for result in (early, strong, identical):
        json.dumps(result.to_dict(), allow_nan=False)


def test_sequential_rejects_bad_input() -> None:
    first = sequential_test(BinarySummary(500, 50), BinarySummary(500, 55))
    with pytest.raises(InvalidArgument, match="fewer observations"):
        sequential_test(BinarySummary(400, 50), BinarySummary(500, 55), previous=first)
    with pytest.raises(InvalidArgument, match="alpha changed"):
        sequential_test(BinarySummary(600, 50), BinarySummary(600, 55), previous=first, alpha=0.1)
    with pytest.raises(InvalidArgument, match="mixing_variance changed"):
        sequential_test(
            BinarySummary(600, 50), BinarySummary(600, 55), previous=first, mixing_variance=1.0
        )
    with pytest.raises(InvalidArgument, match="positive"):
        sequential_test(BinarySummary(600, 50), BinarySummary(600, 55), mixing_variance=0.0)
    with pytest.raises(InvalidArgument, match="different kinds"):
        sequential_test(BinarySummary(600, 50), NumericSummary(600, 1.0, 1.0))


@given(
    st.integers(0, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
    st.integers(0, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
)
@settings(max_examples=100, deadline=None)
def test_sequential_never_nan(a: tuple[int, int], b: tuple[int, int]) -> None:
    result = sequential_test(BinarySummary(*a), BinarySummary(*b), min_samples=2)
    json.dumps(result.to_dict(), allow_nan=False)
    assert 0.0 <= result.p_value <= 1.0
    if result.ci is not None and result.difference is not None:
        assert result.difference in result.ci
