"""The drift report: default tests, selection, correction, large-sample rule, storage, windows."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring import (
    DriftOptions,
    ReferenceProfile,
    build_profile,
    compute_drift,
    drift_over_time,
    output_drift,
)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_drift.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_drift", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_drift", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_data():
    """The benchmark's generator at 20,000 rows (same seed, same shifts)."""
    return _bench_module().make_data(20_000)


def test_default_report_flags_exactly_the_injected_shifts(bench_data) -> None:
    reference, current, drifted = bench_data
    report = compute_drift(build_profile(reference), current)
    assert len(drifted) == 10
    assert sorted(report.drifted_columns) == sorted(drifted)
    assert report.n_features == 55
    assert report.drift_share == pytest.approx(10 / 55)
    assert report.dataset_drift is False  # below Evidently's default share of 0.5
    # drifted features come first, by effect size
    assert {f.column for f in report.features[:10]} == set(drifted)
    tests = {f.column: f.test for f in report.features}
    assert tests["num_00"] == "wasserstein" and tests["cat_0"] == "jensenshannon"


def test_same_verdicts_from_a_dataframe(bench_data) -> None:
    pd = pytest.importorskip("pandas")
    reference, current, drifted = bench_data
    report = compute_drift(pd.DataFrame(reference), pd.DataFrame(current))
    assert sorted(report.drifted_columns) == sorted(drifted)


def test_default_tests_follow_evidently() -> None:
    rng = np.random.default_rng(0)

    def data(n: int) -> dict[str, np.ndarray]:
        return {
            "wide": rng.normal(size=n),
            "few": rng.integers(0, 4, size=n),  # numerical, 4 values: tested as categories
            "cat": rng.choice(["a", "b", "c"], size=n),
        }

    small = compute_drift(data(1000), data(300))
    assert {f.column: f.test for f in small.features} == {
        "wide": "ks",
        "few": "chisquare",
        "cat": "chisquare",
    }
    large = compute_drift(data(1001), data(1001))
    assert {f.column: f.test for f in large.features} == {
        "wide": "wasserstein",
        "few": "jensenshannon",
        "cat": "jensenshannon",
    }
    for f in small.features:
        assert f.p_value is not None and f.p_value_adjusted is not None and f.min_effect
    for f in large.features:
        assert f.p_value is None and f.min_effect is None
    # unlike Evidently, a small window against a large reference gets the p-value tests too
    window = compute_drift(data(5000), data(300))
    assert {f.column: f.test for f in window.features} == {
        "wide": "ks",
        "few": "chisquare",
        "cat": "chisquare",
    }


@pytest.mark.parametrize("test", ["ks", "wasserstein", "psi", "jensenshannon", "chisquare"])
def test_every_test_selectable_globally(test: str) -> None:
    rng = np.random.default_rng(1)
    ref = {"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], size=3000)}
    cur = {"x": rng.normal(1.0, size=800), "c": rng.choice(["a", "b"], size=800, p=[0.2, 0.8])}
    report = compute_drift(ref, cur, DriftOptions(test=test))
    assert report.feature("x").test == test
    # numerical-only tests given globally leave categorical columns on their default
    expected_c = "chisquare" if test in ("ks", "wasserstein") else test
    assert report.feature("c").test == expected_c
    assert report.feature("x").drifted and report.feature("c").drifted


def test_tests_and_thresholds_per_column() -> None:
    rng = np.random.default_rng(2)
    ref = {"x": rng.normal(size=5000), "y": rng.normal(size=5000)}
    cur = {"x": rng.normal(0.3, size=5000), "y": rng.normal(0.3, size=5000)}
    options = DriftOptions(column_tests={"x": "psi"}, column_thresholds={"y": 0.5})
    report = compute_drift(ref, cur, options)
    assert report.feature("x").test == "psi" and report.feature("x").threshold == 0.1
    assert report.feature("y").test == "wasserstein" and report.feature("y").threshold == 0.5
    assert report.feature("x").drifted and not report.feature("y").drifted
    with pytest.raises(InvalidArgument, match="needs numbers"):
        compute_drift(
            {"c": np.array(["a", "b"] * 10)},
            {"c": np.array(["a"] * 5)},
            DriftOptions(column_tests={"c": "ks"}),
        )


def test_benjamini_hochberg_keeps_noise_quiet() -> None:
    """100 columns of pure noise, 20,000 rows: uncorrected KS flags ~5, BH (FDR) ~0."""
    rng = np.random.default_rng(3)
    n, k = 20_000, 100
    ref = {f"x{i}": rng.normal(size=n) for i in range(k)}
    cur = {f"x{i}": rng.normal(size=n) for i in range(k)}
    profile = build_profile(ref)
    flagged = {}
    for correction in ("none", "bh", "bonferroni"):
        options = DriftOptions(test="ks", correction=correction, min_effect_numerical=0.0)
        flagged[correction] = compute_drift(profile, cur, options).n_drifted
    assert 1 <= flagged["none"] <= 12  # ~5% of 100 by chance
    assert flagged["bh"] <= 1
    assert flagged["bonferroni"] == 0
    # and a real shift among the noise is still found
    cur["x0"] = rng.normal(0.2, size=n)
    report = compute_drift(profile, cur, DriftOptions(test="ks"))
    assert report.drifted_columns == ("x0",)


def test_negligible_but_significant_shift_is_not_flagged() -> None:
    """Large n: KS calls a 0.03 sd shift significant; the minimum effect size stops the flag."""
    rng = np.random.default_rng(4)
    n = 100_000
    ref = {"tiny": rng.normal(size=n), "real": rng.normal(size=n)}
    cur = {"tiny": rng.normal(0.03, size=n), "real": rng.normal(0.2, size=n)}
    profile = build_profile(ref)
    report = compute_drift(profile, cur, DriftOptions(test="ks"))
    tiny = report.feature("tiny")
    assert tiny.p_value_adjusted < 1e-4  # significant ...
    assert tiny.effect_size < 0.05 and not tiny.drifted  # ... but negligible
    assert report.feature("real").drifted
    plain = compute_drift(profile, cur, DriftOptions(test="ks", min_effect_numerical=0.0))
    assert plain.feature("tiny").drifted


def test_categorical_effect_floor() -> None:
    rng = np.random.default_rng(5)
    n = 200_000
    ref = {"c": rng.choice(["a", "b"], size=n, p=[0.5, 0.5])}
    cur = {"c": rng.choice(["a", "b"], size=n, p=[0.51, 0.49])}
    report = compute_drift(ref, cur, DriftOptions(test="chisquare"))
    feature = report.feature("c")
    assert feature.p_value < 1e-6 and feature.effect_size < 0.02 and not feature.drifted


def test_dataset_drift_share() -> None:
    rng = np.random.default_rng(6)
    ref = {f"x{i}": rng.normal(size=2000) for i in range(4)}
    cur = {f"x{i}": rng.normal(1.0 if i < 2 else 0.0, size=2000) for i in range(4)}
    report = compute_drift(ref, cur)
    assert report.drift_share == 0.5 and report.dataset_drift
    report = compute_drift(ref, cur, DriftOptions(drift_share=0.75))
    assert not report.dataset_drift


def test_report_to_dict_is_json(bench_data) -> None:
    reference, current, _ = bench_data
    report = compute_drift(reference, current)
    text = json.dumps(report.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["n_drifted"] == 10 and len(data["features"]) == 55
    first = data["features"][0]
    assert set(first) >= {"column", "test", "statistic", "p_value", "effect_size", "drifted"}
    hist = first["histogram"]
    assert sum(hist["reference"]) == 20_000 and sum(hist["current"]) == 20_000
    assert len(text) < 100_000  # aggregates only


def test_profile_save_and_load_give_the_same_report(tmp_path, bench_data) -> None:
    reference, current, _ = bench_data
    profile = build_profile(reference, exact_limit=10_000, sketch_size=1000)
    path = profile.save(tmp_path / "sub" / "reference.profile")
    loaded = ReferenceProfile.load(path)
    assert loaded.names == profile.names
    assert compute_drift(loaded, current) == compute_drift(profile, current)
    assert path.stat().st_size < 2_000_000  # sketches, not 20,000 rows x 50 columns


def test_output_drift() -> None:
    rng = np.random.default_rng(17)
    ref = {"x": rng.normal(size=2000), "prediction": rng.random(2000)}
    profile = build_profile(ref)
    same = output_drift(profile, rng.random(500))
    assert same.column == "prediction" and not same.drifted
    shifted = output_drift(profile, rng.random(500) ** 3)
    assert shifted.drifted and shifted.test == "ks"  # 500 rows: a p-value test
    labels = build_profile({"label": rng.choice(["ok", "fraud"], size=2000, p=[0.9, 0.1])})
    assert output_drift(labels, ["fraud"] * 300 + ["ok"] * 300, column="label").drifted
    with pytest.raises(InvalidArgument, match="no prediction column 'prediction'"):
        output_drift(labels, [1, 2, 3])


def test_drift_over_time_finds_when_it_started() -> None:
    rng = np.random.default_rng(8)
    ref = {"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], size=5000)}
    hours = 24
    stamps = (
        np.datetime64("2026-11-01T00:00") + np.arange(hours * 200).astype("timedelta64[s]") * 18
    )  # 200 rows per hour
    shifted = np.arange(stamps.size) >= 16 * 200  # drift from 16:00
    x = rng.normal(size=stamps.size) + shifted * 1.0
    cur = {"x": x, "c": rng.choice(["a", "b"], size=stamps.size)}
    order = rng.permutation(stamps.size)  # rows need not arrive in time order
    cur = {k: v[order] for k, v in cur.items()}
    timeline, reports = drift_over_time(ref, cur, stamps[order], window="1h", step="30m")
    assert timeline.columns == ("x", "c")
    assert timeline.starts.size == 48 and timeline.n_rows[0] == 200
    x_drift = timeline.drifted[0]
    starts = (timeline.starts - timeline.starts[0]) / np.timedelta64(1, "h")
    assert x_drift[starts >= 16].all()
    assert x_drift[starts < 15.5].mean() <= 0.1  # per-window tests at 5%: rare false alarms
    assert timeline.drifted[1].mean() <= 0.1
    assert set(timeline.tests) == {"ks", "chisquare"}  # 200-row windows: p-value tests
    assert reports[-1] is not None and reports[-1].feature("x").drifted
    json.dumps(timeline.to_dict(), allow_nan=True)


def test_drift_over_time_with_numeric_timestamps() -> None:
    rng = np.random.default_rng(9)
    ref = {"x": rng.normal(size=3000)}
    cur = {"x": rng.normal(size=1000)}
    timeline, _ = drift_over_time(ref, cur, np.arange(1000.0), window=100, step=250, min_rows=50)
    assert timeline.starts.tolist() == [0.0, 250.0, 500.0, 750.0]
    assert timeline.n_rows.tolist() == [100, 100, 100, 100]
    with pytest.raises(InvalidArgument, match="plain numbers"):
        drift_over_time(ref, cur, np.arange(1000.0), window="1h")
    with pytest.raises(InvalidArgument, match="not a duration"):
        drift_over_time(ref, cur, np.arange(1000).astype("datetime64[s]"), window="soon")
