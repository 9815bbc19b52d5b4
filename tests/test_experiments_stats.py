"""Summaries, fixed-horizon tests and the A/B report, checked against scipy and statsmodels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.abtest import ab_report
from jupyter_modelhub.experiments.inference import (
    adjust_p_values,
    mean_difference_interval,
    rate_difference_interval,
    t_interval,
    two_proportion_ztest,
    welch_ttest,
    wilson_interval,
)
from jupyter_modelhub.experiments.records import BinarySummary, NumericSummary

TOL = 1e-6

RATE_CASES = [
    # (control successes, control n, challenger successes, challenger n)
    (120, 1000, 150, 1000),
    (48, 1003, 31, 977),
    (5, 40, 12, 37),
    (0, 500, 3, 520),
    (2000, 20000, 2105, 19800),
    (7, 10, 3, 12),
]


def _numeric_datasets() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(42)
    return [
        (rng.normal(10, 2, 50), rng.normal(10.5, 3, 70)),
        (rng.exponential(1.0, 300), rng.exponential(1.1, 250)),
        (rng.normal(0, 1, 5), rng.normal(0, 5, 9)),
        (rng.lognormal(0, 1, 1000), rng.lognormal(0.05, 1, 1200)),
        (np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])),
    ]


# --- summaries ---------------------------------------------------------------------------------


def test_numeric_summary_from_values_matches_numpy() -> None:
    values = np.random.default_rng(1).normal(3, 2, 101)
    summary = NumericSummary.from_values(values)
    assert summary.n == 101
    assert summary.mean == pytest.approx(values.mean(), abs=1e-12)
    assert summary.variance == pytest.approx(values.var(ddof=1), abs=1e-12)


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=40),
    st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=40),
)
@settings(max_examples=100, deadline=None)
def test_numeric_merge_equals_summary_of_concatenation(a: list[float], b: list[float]) -> None:
    merged = NumericSummary.from_values(a).merge(NumericSummary.from_values(b))
    whole = NumericSummary.from_values(a + b)
    assert merged.n == whole.n
    assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
    assert merged.variance == pytest.approx(whole.variance, rel=1e-7, abs=1e-3)


def test_merge_of_many_chunks() -> None:
    values = np.random.default_rng(2).gamma(2.0, 3.0, 10_000)
    total = NumericSummary(n=0, mean=0.0, variance=0.0)
    for chunk in np.array_split(values, 37):
        total = total.merge(NumericSummary.from_values(chunk))
    assert total.mean == pytest.approx(values.mean(), rel=1e-12)
    assert total.variance == pytest.approx(values.var(ddof=1), rel=1e-10)


def test_binary_summary_from_outcomes_and_merge() -> None:
    summary = BinarySummary.from_outcomes([True, False, True, 1, 0])
    assert (summary.n, summary.successes, summary.rate) == (5, 3, 0.6)
    assert summary.merge(BinarySummary(5, 1)) == BinarySummary(10, 4)
    assert BinarySummary(0, 0).rate is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: BinarySummary(10, 11),
        lambda: BinarySummary(-1, 0),
        lambda: BinarySummary(3.5, 1),  # type: ignore[arg-type]
        lambda: BinarySummary.from_outcomes([0, 1, 2]),
        lambda: NumericSummary(10, float("nan"), 1.0),
        lambda: NumericSummary(10, 1.0, -1.0),
        lambda: NumericSummary.from_values([1.0, np.inf]),
        lambda: NumericSummary.from_values(np.ones((2, 2))),
    ],
)
def test_bad_summaries_raise_invalid_argument(build) -> None:
    with pytest.raises(InvalidArgument):
        build()


def test_numeric_summary_small_samples_are_documented() -> None:
    assert NumericSummary.from_values([]) == NumericSummary(0, 0.0, 0.0)
    one = NumericSummary.from_values([4.0])
    assert (one.n, one.mean, one.variance) == (1, 4.0, 0.0)


# --- single-sample intervals ---------------------------------------------------------------------


@pytest.mark.parametrize("successes,n", [(0, 10), (10, 10), (1, 1), (37, 120), (500, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(successes: int, n: int, confidence: float) -> None:
    interval = wilson_interval(successes, n, confidence)
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    assert interval is not None
    assert interval.low == pytest.approx(low, abs=TOL)
    assert interval.high == pytest.approx(high, abs=TOL)
    assert 0.0 <= interval.low <= successes / n <= interval.high <= 1.0


def test_t_interval_matches_statsmodels() -> None:
    for values, _ in _numeric_datasets():
        interval = t_interval(NumericSummary.from_values(values), 0.95)
        low, high = DescrStatsW(values).tconfint_mean(alpha=0.05)
        assert interval is not None
        assert (interval.low, interval.high) == pytest.approx((low, high), abs=TOL)
    assert t_interval(NumericSummary.from_values([1.0])) is None


# --- two-sample tests --------------------------------------------------------------------------


@pytest.mark.parametrize("s1,n1,s2,n2", RATE_CASES)
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_two_proportion_ztest_matches_statsmodels(s1, n1, s2, n2, alternative) -> None:
    ours = two_proportion_ztest(BinarySummary(n1, s1), BinarySummary(n2, s2), alternative)
    z, p = proportions_ztest([s2, s1], [n2, n1], alternative=alternative)
    assert ours.statistic == pytest.approx(z, abs=TOL)
    assert ours.p_value == pytest.approx(p, abs=TOL)


@pytest.mark.parametrize("s1,n1,s2,n2", RATE_CASES)
def test_rate_difference_interval_matches_statsmodels_wald(s1, n1, s2, n2) -> None:
    interval = rate_difference_interval(BinarySummary(n1, s1), BinarySummary(n2, s2), 0.95)
    low, high = confint_proportions_2indep(s2, n2, s1, n1, method="wald", compare="diff")
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=TOL)


def test_welch_matches_scipy_and_statsmodels() -> None:
    for control, challenger in _numeric_datasets():
        a, b = NumericSummary.from_values(control), NumericSummary.from_values(challenger)
        ours = welch_ttest(a, b)
        reference = stats.ttest_ind(challenger, control, equal_var=False)
        from_stats = stats.ttest_ind_from_stats(
            b.mean, b.std, b.n, a.mean, a.std, a.n, equal_var=False
        )
        assert ours.statistic == pytest.approx(reference.statistic, abs=TOL)
        assert ours.p_value == pytest.approx(reference.pvalue, abs=TOL)
        assert ours.p_value == pytest.approx(from_stats.pvalue, abs=TOL)
        for alternative in ("larger", "smaller"):
            one_sided = stats.ttest_ind(
                challenger,
                control,
                equal_var=False,
                alternative={"larger": "greater"}.get(alternative, "less"),
            )
            assert welch_ttest(a, b, alternative).p_value == pytest.approx(
                one_sided.pvalue, abs=TOL
            )
        interval = mean_difference_interval(a, b, 0.95)
        low, high = CompareMeans(DescrStatsW(challenger), DescrStatsW(control)).tconfint_diff(
            alpha=0.05, usevar="unequal"
        )
        assert (interval.low, interval.high) == pytest.approx((low, high), abs=TOL)


def test_degenerate_samples_give_documented_answers() -> None:
    # every outcome identical: pooled rate 0 or 1, no evidence of a difference
    for s in (0, 1):
        result = two_proportion_ztest(BinarySummary(50, 50 * s), BinarySummary(80, 80 * s))
        assert (result.statistic, result.p_value) == (0.0, 1.0)
    # zero variance on both sides: exact answer
    same = welch_ttest(NumericSummary(10, 3.0, 0.0), NumericSummary(12, 3.0, 0.0))
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    apart = welch_ttest(NumericSummary(10, 3.0, 0.0), NumericSummary(12, 4.0, 0.0))
    assert (apart.statistic, apart.p_value) == (None, 0.0)
    assert (
        welch_ttest(NumericSummary(10, 3.0, 0.0), NumericSummary(12, 4.0, 0.0), "smaller").p_value
        == 1.0
    )
    # zero variance on one side only is an ordinary Welch test
    one = welch_ttest(NumericSummary(10, 3.0, 0.0), NumericSummary(12, 4.0, 1.0))
    assert 0.0 < one.p_value < 0.05
    with pytest.raises(InvalidArgument):
        welch_ttest(NumericSummary(1, 3.0, 0.0), NumericSummary(12, 4.0, 1.0))
    with pytest.raises(InvalidArgument):
        two_proportion_ztest(BinarySummary(0, 0), BinarySummary(10, 1))


@pytest.mark.parametrize(
    "p_values",
    [[0.04, 0.01, 0.03], [0.2, 0.001, 0.049, 0.05, 0.012], [0.5, 0.5, 0.0, 1.0]],
)
@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_adjusted_p_values_match_statsmodels(p_values: list[float], method: str) -> None:
    ours = adjust_p_values(p_values, method)  # type: ignore[arg-type]
    _, reference, _, _ = multipletests(p_values, method=method)
    assert ours == pytest.approx(list(reference), abs=1e-12)


# --- properties --------------------------------------------------------------------------------

counts = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@given(counts, counts)
@settings(max_examples=200, deadline=None)
def test_rate_comparison_properties(a: tuple[int, int], b: tuple[int, int]) -> None:
    control, challenger = BinarySummary(*a), BinarySummary(*b)
    forward = two_proportion_ztest(control, challenger)
    backward = two_proportion_ztest(challenger, control)
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value, abs=1e-12)
    if forward.statistic is not None and backward.statistic is not None:
        assert forward.statistic == pytest.approx(-backward.statistic, abs=1e-9)
    interval = rate_difference_interval(control, challenger)
    difference = challenger.successes / challenger.n - control.successes / control.n
    assert interval.low - 1e-12 <= difference <= interval.high + 1e-12
    swapped = rate_difference_interval(challenger, control)
    assert (swapped.low, swapped.high) == pytest.approx((-interval.high, -interval.low), abs=1e-12)


means = st.tuples(st.integers(2, 10_000), st.floats(-1e3, 1e3), st.floats(0, 1e4)).map(
    lambda t: NumericSummary(*t)
)


@given(means, means)
@settings(max_examples=200, deadline=None)
def test_mean_comparison_properties(control: NumericSummary, challenger: NumericSummary) -> None:
    result = welch_ttest(control, challenger)
    assert 0.0 <= result.p_value <= 1.0
    assert not math.isnan(result.p_value)
    assert welch_ttest(challenger, control).p_value == pytest.approx(result.p_value, abs=1e-12)
    interval = mean_difference_interval(control, challenger)
    assert challenger.mean - control.mean in interval


# --- the A/B report ----------------------------------------------------------------------------


def test_ab_report_binary_fields_and_verdict() -> None:
    report = ab_report(
        {"v1": BinarySummary(10_000, 1000), "v2": BinarySummary(10_000, 1100)},
        control="v1",
        metric_label="conversion",
    )
    (comparison,) = report.comparisons
    z, p = proportions_ztest([1100, 1000], [10_000, 10_000])
    assert comparison.p_value == pytest.approx(p, abs=TOL)
    assert comparison.statistic == pytest.approx(z, abs=TOL)
    assert comparison.difference == pytest.approx(0.01)
    assert comparison.relative_lift == pytest.approx(0.1)
    assert comparison.relative_lift_ci is not None
    assert 0.1 in comparison.relative_lift_ci
    assert comparison.status == "better" and comparison.significant
    assert comparison.verdict.startswith(
        "challenger v2 better: +1.0 pp conversion (+10.0% relative)"
    )
    assert "95% CI [+0.2 pp, +1.8 pp]" in comparison.verdict
    assert comparison.verdict.endswith(f"p={p:.3f}")
    variant = report.variants[0]
    assert variant.ci is not None and variant.estimate == 0.1 and 0.1 in variant.ci
    json.dumps(report.to_dict(), allow_nan=False)


def test_relative_lift_delta_method_by_hand() -> None:
    report = ab_report(
        {"a": NumericSummary(400, 20.0, 25.0), "b": NumericSummary(500, 21.0, 36.0)}, control="a"
    )
    (comparison,) = report.comparisons
    se = math.sqrt((36 / 500) / 20**2 + 21**2 * (25 / 400) / 20**4)
    assert comparison.relative_lift == pytest.approx(0.05)
    assert comparison.relative_lift_ci is not None
    assert comparison.relative_lift_ci.low == pytest.approx(0.05 - 1.959963984540054 * se)


def test_ab_report_lower_is_better_and_no_difference() -> None:
    worse = ab_report(
        {"champion": BinarySummary(5000, 50), "canary": BinarySummary(5000, 90)},
        control="champion",
        higher_is_better=False,
        metric_label="error rate",
    ).comparisons[0]
    assert worse.status == "worse"
    assert worse.verdict.startswith("challenger canary worse: +0.8 pp error rate")
    same = ab_report(
        {"a": BinarySummary(1000, 100), "b": BinarySummary(1000, 104)}, control="a"
    ).comparisons[0]
    assert same.status == "no_difference"
    assert same.verdict.startswith("no significant difference yet: +0.4 pp rate")


def test_ab_report_abn_with_corrections() -> None:
    variants = {
        "control": BinarySummary(4000, 400),
        "b": BinarySummary(4000, 460),
        "c": BinarySummary(4000, 410),
        "d": BinarySummary(4000, 455),
    }
    raw = ab_report(variants, control="control")
    p = [c.p_value for c in raw.comparisons]
    for method in ("holm", "bonferroni"):
        report = ab_report(variants, control="control", correction=method)  # type: ignore[arg-type]
        expected = multipletests(p, method=method)[1]
        assert [c.adjusted_p_value for c in report.comparisons] == pytest.approx(list(expected))
        assert [c.p_value for c in report.comparisons] == pytest.approx(p)
        for comparison in report.comparisons:
            assert comparison.significant == (comparison.adjusted_p_value < 0.05)
    assert [v.name for v in raw.variants] == ["control", "b", "c", "d"]
    assert raw.comparison("c").challenger == "c"


def test_ab_report_not_enough_data() -> None:
    report = ab_report(
        {"a": BinarySummary(1000, 100), "b": BinarySummary(37, 9)}, control="a", min_samples=100
    )
    comparison = report.comparisons[0]
    assert comparison.status == "not_enough_data" and not comparison.significant
    assert comparison.verdict == "not enough data: n<100 (b has 37)"
    assert comparison.p_value is not None  # still computed, just not judged
    empty = ab_report({"a": NumericSummary(0, 0, 0), "b": NumericSummary(1, 2.0, 0)}, control="a")
    assert empty.comparisons[0].p_value is None
    assert empty.comparisons[0].verdict == "not enough data: n<100 (a has 0)"
    assert empty.variants[0].estimate is None and empty.variants[0].ci is None
    json.dumps(empty.to_dict(), allow_nan=False)


def test_ab_report_zero_and_all_successes() -> None:
    report = ab_report(
        {"a": BinarySummary(500, 0), "b": BinarySummary(500, 0), "c": BinarySummary(500, 500)},
        control="a",
    )
    b, c = report.comparisons
    assert (b.p_value, b.difference, b.relative_lift) == (1.0, 0.0, None)
    assert c.p_value is not None and c.p_value < 1e-6 and c.status == "better"
    assert "relative" not in c.verdict  # the lift over a zero rate is undefined
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variants": {"a": BinarySummary(1, 1)}, "control": "a"},
        {"variants": {"a": BinarySummary(1, 1), "b": BinarySummary(1, 1)}, "control": "x"},
        {"variants": {"a": BinarySummary(1, 1), "b": NumericSummary(1, 1, 0)}, "control": "a"},
        {
            "variants": {"a": BinarySummary(1, 1), "b": BinarySummary(1, 1)},
            "control": "a",
            "alpha": 1.5,
        },
        {
            "variants": {"a": BinarySummary(1, 1), "b": BinarySummary(1, 1)},
            "control": "a",
            "correction": "sidak",
        },
    ],
)
def test_ab_report_rejects_bad_input(kwargs) -> None:
    with pytest.raises(InvalidArgument) as info:
        ab_report(**kwargs)
    assert info.value.hint or str(info.value)


small_counts = st.integers(0, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))
small_means = st.tuples(st.integers(0, 300), st.floats(-100, 100), st.floats(0, 100))


@given(st.lists(small_counts, min_size=2, max_size=4), st.sampled_from(["none", "holm"]))
@settings(max_examples=100, deadline=None)
def test_ab_report_rates_never_nan(counts_list, correction) -> None:
    variants = {f"v{i}": BinarySummary(*c) for i, c in enumerate(counts_list)}
    report = ab_report(variants, control="v0", correction=correction, min_samples=0)
    json.dumps(report.to_dict(), allow_nan=False)  # no NaN or infinity anywhere
    for comparison in report.comparisons:
        if comparison.p_value is None:
            assert comparison.status == "not_enough_data"
            continue
        assert comparison.adjusted_p_value is not None
        assert 0.0 <= comparison.p_value <= comparison.adjusted_p_value <= 1.0
        assert comparison.difference_ci is not None and comparison.difference is not None
        assert comparison.difference_ci.low - 1e-12 <= comparison.difference
        assert comparison.difference <= comparison.difference_ci.high + 1e-12
    for variant in report.variants:
        assert (variant.ci is None) == (variant.n == 0)
        if variant.ci is not None and variant.estimate is not None:
            assert variant.estimate in variant.ci


@given(st.lists(small_means, min_size=2, max_size=4))
@settings(max_examples=100, deadline=None)
def test_ab_report_means_never_nan(means_list) -> None:
    variants = {f"v{i}": NumericSummary(*m) for i, m in enumerate(means_list)}
    report = ab_report(variants, control="v0", min_samples=0)
    json.dumps(report.to_dict(), allow_nan=False)
    for comparison in report.comparisons:
        if comparison.p_value is not None:
            assert 0.0 <= comparison.p_value <= 1.0
            assert comparison.difference_ci is not None and comparison.difference is not None
            assert comparison.difference in comparison.difference_ci
        else:
            assert comparison.status == "not_enough_data"
