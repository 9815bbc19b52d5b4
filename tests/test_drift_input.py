"""Bad and awkward input to the drift engine: a clear message or a documented result."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring import (
    DriftOptions,
    ReferenceProfile,
    build_profile,
    compute_drift,
)

pd = pytest.importorskip("pandas")
RNG = np.random.default_rng(42)
REF = {"x": RNG.normal(size=500), "c": RNG.choice(["a", "b", "c"], size=500)}


def test_missing_column_names_it_and_the_fix() -> None:
    with pytest.raises(InvalidArgument, match=r"lacks column\(s\) 'c'.*DriftOptions\(columns="):
        compute_drift(REF, {"x": RNG.normal(size=50)})
    report = compute_drift(REF, {"x": RNG.normal(size=50)}, DriftOptions(columns=["x"]))
    assert [f.column for f in report.features] == ["x"]


def test_unknown_column_in_options() -> None:
    with pytest.raises(InvalidArgument, match="no column 'nope'"):
        compute_drift(REF, REF, DriftOptions(columns=["nope"]))


def test_extra_current_columns_are_listed_not_compared() -> None:
    current = {**REF, "new": np.zeros(500)}
    report = compute_drift(REF, current)
    assert report.ignored_columns == ("new",)
    assert report.n_features == 2


def test_numbers_against_text_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="'x' is numerical in the reference"):
        compute_drift(REF, {"x": np.array(["1.5"] * 10), "c": np.array(["a"] * 10)})
    with pytest.raises(InvalidArgument, match="'c' holds text categories in the reference"):
        compute_drift(REF, {"x": np.zeros(10), "c": np.arange(10)})


def test_integer_codes_match_integer_categories() -> None:
    ref = {"k": pd.Categorical(RNG.integers(0, 3, size=300))}
    report = compute_drift(ref, {"k": RNG.integers(0, 3, size=100)})
    assert not report.feature("k").drifted
    assert report.feature("k").histogram.labels == ("0", "1", "2")


def test_empty_window() -> None:
    with pytest.raises(InvalidArgument, match=r"window is empty \(0 rows\).*--window"):
        compute_drift(REF, {"x": np.array([]), "c": np.array([], dtype=object)})


def test_empty_reference_and_empty_table() -> None:
    with pytest.raises(InvalidArgument, match="no rows"):
        build_profile({"x": np.array([])})
    with pytest.raises(InvalidArgument, match="no columns"):
        build_profile({})


def test_nan_and_infinities_are_dropped_and_counted() -> None:
    cur = RNG.normal(size=200)
    dirty = cur.copy()
    dirty[:10] = np.nan
    dirty[10:13] = np.inf
    dirty[13] = -np.inf
    ref = REF["x"].copy()
    ref[:5] = np.nan
    profile = build_profile({"x": ref})
    assert profile["x"].n == 495 and profile["x"].n_nan == 5
    report = compute_drift(profile, {"x": dirty}, DriftOptions(test="ks"))
    feature = report.feature("x")
    assert feature.n_dropped == 14 and feature.n_current == 186 and feature.n_reference == 495
    finite = dirty[np.isfinite(dirty)]
    expected = stats.ks_2samp(ref[5:], finite)
    assert feature.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert feature.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_a_column_with_no_value_left_in_the_window() -> None:
    report = compute_drift(
        REF, {"x": np.full(20, np.nan), "c": np.array([None] * 20, dtype=object)}
    )
    for column in ("x", "c"):
        feature = report.feature(column)
        assert not feature.drifted and np.isnan(feature.statistic)
        assert feature.n_current == 0 and feature.n_dropped == 20
        assert "no" in feature.note and "current window" in feature.note
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["features"][0]["statistic"] is None


def test_reference_column_without_values_is_skipped() -> None:
    profile = build_profile({"x": REF["x"], "empty": np.full(500, np.nan)})
    assert profile.names == ("x",)
    assert "no finite value" in profile.skipped["empty"]
    report = compute_drift(profile, {"x": REF["x"], "empty": np.zeros(500)})
    assert report.skipped == {"empty": profile.skipped["empty"]}
    assert report.ignored_columns == ()


def test_constant_columns() -> None:
    ref = {"k": np.full(2000, 3.0)}
    same = compute_drift(ref, {"k": np.full(300, 3.0)}).feature("k")
    assert not same.drifted and same.statistic == 0.0 and "constant" in same.note
    moved = compute_drift(ref, {"k": np.full(300, 4.0)}).feature("k")
    assert moved.drifted  # a value the reference never had
    assert moved.histogram.discrete and moved.histogram.edges[0] == 3.0
    assert moved.histogram.reference == (0, 2000, 0) and moved.histogram.current == (0, 0, 300)
    ks = compute_drift(ref, {"k": np.full(300, 3.0)}, DriftOptions(test="ks")).feature("k")
    assert ks.statistic == 0.0 and ks.p_value == 1.0 and not ks.drifted


def test_single_category() -> None:
    small = {"c": np.array(["only"] * 50)}
    feature = compute_drift(small, {"c": np.array(["only"] * 20)}).feature("c")
    assert feature.test == "chisquare"
    assert feature.statistic == 0.0 and feature.p_value == 1.0 and not feature.drifted
    assert "single category" in feature.note
    new = compute_drift(small, {"c": np.array(["only"] * 10 + ["other"] * 10)}).feature("c")
    assert new.drifted and new.histogram.labels == ("only", "other")


def test_new_and_missing_categories() -> None:
    cur = np.array(["a"] * 40 + ["z"] * 40 + [None] * 20, dtype=object)
    feature = compute_drift(REF, {"x": REF["x"][:100], "c": cur}).feature("c")
    assert feature.n_dropped == 20 and feature.n_current == 80
    assert feature.histogram.labels == ("a", "b", "c", "z")
    assert feature.histogram.current == (40, 0, 0, 40)
    assert feature.drifted


def test_pandas_and_arrow_inputs() -> None:
    frame = pd.DataFrame(
        {
            "i": pd.array(RNG.integers(0, 100, size=400), dtype="Int64"),
            "f": RNG.normal(size=400),
            "b": RNG.random(400) > 0.5,
            "s": pd.Series(RNG.choice(["u", "v"], size=400), dtype="category"),
        }
    )
    frame.loc[0, "i"] = pd.NA
    profile = build_profile(frame)
    assert {n: p.kind for n, p in profile.columns.items()} == {
        "i": "numerical",
        "f": "numerical",
        "b": "categorical",
        "s": "categorical",
    }
    assert profile["i"].n_nan == 1
    report = compute_drift(profile, pa.Table.from_pandas(frame))
    assert report.n_drifted == 0 and report.n_current == 400


def test_mixed_object_values_compare_as_text() -> None:
    ref = {"m": np.array(["a", 1, 2.5, None] * 50, dtype=object)}
    report = compute_drift(ref, {"m": np.array(["a", 1, 2.5, None] * 10, dtype=object)})
    feature = report.feature("m")
    assert not feature.drifted and feature.n_dropped == 10


def test_unsupported_inputs() -> None:
    with pytest.raises(InvalidArgument, match="DataFrame, a pyarrow Table or a dict"):
        build_profile([1, 2, 3])
    with pytest.raises(InvalidArgument, match="different lengths"):
        build_profile({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(InvalidArgument, match="dates/times"):
        build_profile({"t": np.arange(3).astype("datetime64[s]")})
    with pytest.raises(InvalidArgument, match="not one value per row"):
        build_profile({"a": np.zeros((3, 2))})
    with pytest.raises(InvalidArgument, match="column_types"):
        build_profile({"a": np.zeros(3)}, column_types={"a": "text"})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"test": "anderson"}, "Unknown drift test"),
        ({"correction": "holm"}, "Unknown multiple-testing correction"),
        ({"threshold": 0.0}, "positive number"),
        ({"column_thresholds": {"x": float("nan")}}, "positive number"),
        ({"drift_share": 0.0}, "drift_share"),
        ({"min_effect_numerical": -1.0}, "min_effect_numerical"),
        ({"columns": "x"}, "list of column names"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        DriftOptions(**kwargs)


def test_bad_profile_files(tmp_path) -> None:
    with pytest.raises(InvalidArgument, match="No drift profile"):
        ReferenceProfile.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a profile")
    with pytest.raises(InvalidArgument, match="not a drift profile"):
        ReferenceProfile.load(junk)
    other = tmp_path / "other.npz"
    with open(other, "wb") as out:
        np.savez(out, a=np.zeros(3))
    with pytest.raises(InvalidArgument, match="no header"):
        ReferenceProfile.load(other)
