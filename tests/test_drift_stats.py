"""The drift statistics against scipy (and statsmodels for the corrections)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance
from statsmodels.stats.multitest import multipletests

from jupyter_modelhub.monitoring import DriftOptions, adjust_pvalues, build_profile, compute_drift
from jupyter_modelhub.monitoring import drift_tests as dt

SIZES = [(1, 3), (2, 3), (50, 37), (20, 5000), (1000, 1000), (3000, 777), (12_000, 20_001)]


def _samples(n: int, m: int, seed: int, rounding: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(0.1, 1.2, size=m)
    if rounding is not None:  # many ties, within and across the samples
        a, b = np.round(a, rounding), np.round(b, rounding)
    return a, b


@pytest.mark.parametrize("n,m", SIZES)
@pytest.mark.parametrize("rounding", [None, 1])
def test_ks_equals_scipy(n: int, m: int, rounding: int | None) -> None:
    a, b = _samples(n, m, n + m, rounding)
    expected = stats.ks_2samp(a, b, method="asymp")
    d = dt.ks_statistic(np.sort(a), np.sort(b))
    assert d == pytest.approx(expected.statistic, abs=1e-9)
    assert float(dt.ks_pvalue(d, n, m)) == pytest.approx(expected.pvalue, abs=1e-6)


def test_ks_pvalue_vectorised_over_columns() -> None:
    d = np.array([0.01, 0.05, 0.2])
    n = np.array([1000, 200_000, 30])
    m = np.array([500, 200_000, 31])
    got = dt.ks_pvalue(d, n, m)
    for i in range(3):  # the same formula scipy applies to a statistic
        expected = stats.kstwo.sf(d[i], np.round(n[i] * m[i] / (n[i] + m[i])))
        assert got[i] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n,m", [(60_000, 60_000), (120_000, 90_000)])
def test_ks_large_samples_within_1e6_of_scipy(n: int, m: int) -> None:
    """Large samples use the corrected Kolmogorov limit: within 1e-6 of scipy's asymp p."""
    rng = np.random.default_rng(n)
    base = rng.normal(size=n)
    for shift in (0.0, 0.005, 0.01, 0.02):
        b = rng.normal(shift, size=m)
        expected = stats.ks_2samp(base, b, method="asymp")
        d = dt.ks_statistic(np.sort(base), np.sort(b))
        assert d == pytest.approx(expected.statistic, abs=1e-9)
        assert float(dt.ks_pvalue(d, n, m)) == pytest.approx(expected.pvalue, abs=1e-6)
    en = round(n * m / (n + m))
    d = np.linspace(0.3, 3.5, 33) / np.sqrt(en)
    np.testing.assert_allclose(dt.ks_pvalue(d, n, m), stats.kstwo.sf(d, en), rtol=0, atol=1e-6)


def test_ks_one_row_each_side_has_a_pvalue() -> None:
    assert np.isfinite(dt.ks_pvalue(1.0, 1, 1))  # scipy's asymptotic formula gives NaN
    assert dt.ks_pvalue_exact(1.0, 1, 1) == 1.0


@pytest.mark.parametrize("n,m", [(1, 1), (5, 3), (200, 35), (1000, 1000), (3000, 777)])
def test_engine_ks_equals_scipy_default(n: int, m: int) -> None:
    """Small samples: the engine's KS p-value is scipy's exact one, as ks_2samp's default."""
    a, b = _samples(n, m, 3 * n + m, 1)
    report = compute_drift({"x": a}, {"x": b}, DriftOptions(test="ks"))
    expected = stats.ks_2samp(a, b)
    assert report.feature("x").statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert report.feature("x").p_value == pytest.approx(expected.pvalue, abs=1e-9)
    if n * m > 1:  # scipy's asymptotic p-value is NaN for one row against one row
        asymp = compute_drift({"x": a}, {"x": b}, DriftOptions(test="ks", ks_method="asymp"))
        expected = stats.ks_2samp(a, b, method="asymp")
        assert asymp.feature("x").p_value == pytest.approx(expected.pvalue, abs=1e-6)


@pytest.mark.parametrize("n,m", SIZES)
@pytest.mark.parametrize("rounding", [None, 0])
def test_wasserstein_equals_scipy(n: int, m: int, rounding: int | None) -> None:
    a, b = _samples(n, m, 7 * n + m, rounding)
    expected = stats.wasserstein_distance(a, b)
    assert dt.wasserstein(np.sort(a), np.sort(b)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_normalised_wasserstein_as_evidently() -> None:
    a, b = _samples(5000, 4000, 3, None)
    profile = build_profile({"x": a})
    report = compute_drift(profile, {"x": b})
    feature = report.feature("x")
    assert feature.test == "wasserstein"
    expected = stats.wasserstein_distance(a, b) / max(np.std(a), 0.001)
    assert feature.statistic == pytest.approx(expected, rel=1e-9)
    assert feature.effect_size == feature.statistic


COUNTS = [
    ([10, 20, 30], [12, 18, 35]),
    ([500, 5, 0, 7], [450, 0, 3, 9]),
    ([1000, 1], [990, 11]),
    ([3, 0, 4], [0, 0, 5]),
]


@pytest.mark.parametrize("ref,cur", COUNTS)
def test_chi_square_equals_scipy_contingency(ref: list[int], cur: list[int]) -> None:
    table = np.array([ref, cur])
    table = table[:, table.sum(axis=0) > 0]  # scipy refuses bins empty in both samples
    expected = stats.chi2_contingency(table, correction=False)
    statistic, p_value = dt.chi_square(np.array(ref), np.array(cur))
    assert statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_chi_square_2x2_is_the_two_proportion_z_test() -> None:
    ref, cur = np.array([700, 300]), np.array([640, 360])
    p1, p2 = ref[1] / ref.sum(), cur[1] / cur.sum()
    pooled = (ref[1] + cur[1]) / (ref.sum() + cur.sum())
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / ref.sum() + 1 / cur.sum()))
    statistic, p_value = dt.chi_square(ref, cur)
    assert statistic == pytest.approx(z**2, rel=1e-9)
    assert p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_chi_square_single_category_is_no_evidence() -> None:
    assert dt.chi_square(np.array([10, 0]), np.array([5, 0])) == (0.0, 1.0)


@pytest.mark.parametrize("ref,cur", COUNTS)
def test_jensen_shannon_equals_scipy(ref: list[int], cur: list[int]) -> None:
    p, q = np.array(ref) / sum(ref), np.array(cur) / sum(cur)
    expected = distance.jensenshannon(p, q)
    assert dt.jensen_shannon(np.array(ref), np.array(cur)) == pytest.approx(expected, abs=1e-12)


def test_psi_with_epsilon_for_empty_bins() -> None:
    ref, cur = np.array([50, 50, 0]), np.array([40, 50, 10])
    p = np.maximum(ref / 100, dt.PSI_EPSILON)
    q = np.maximum(cur / 100, dt.PSI_EPSILON)
    assert dt.psi(ref, cur) == pytest.approx(float(((q - p) * np.log(q / p)).sum()))
    assert dt.psi(ref, ref) == 0.0


@pytest.mark.parametrize("method,sm_method", [("bh", "fdr_bh"), ("bonferroni", "bonferroni")])
def test_corrections_equal_statsmodels(method: str, sm_method: str) -> None:
    p = np.random.default_rng(5).random(40) ** 3
    expected = multipletests(p, method=sm_method)[1]
    np.testing.assert_allclose(adjust_pvalues(p, method), expected, rtol=1e-12)
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)


def test_sketch_keeps_ks_close_to_exact() -> None:
    """A reference above exact_limit is kept as a quantile sketch: KS moves by ~1/sketch_size."""
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=150_000), rng.normal(0.02, size=50_000)
    profile = build_profile({"x": a}, exact_limit=100_000, sketch_size=10_000)
    assert not profile["x"].exact
    assert profile["x"].values.size == 10_000
    report = compute_drift(profile, {"x": b}, DriftOptions(test="ks"))
    expected = stats.ks_2samp(a, b)
    assert abs(report.feature("x").statistic - expected.statistic) < 2e-4
    assert report.feature("x").effect_size == pytest.approx(
        stats.wasserstein_distance(a, b) / np.std(a), abs=2e-3
    )
