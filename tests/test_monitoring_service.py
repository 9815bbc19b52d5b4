"""The drift service on a real hub: cached reference profiles, prediction-log windows, messages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import InvalidArgument, NotFound
from jupyter_modelhub.monitoring import DriftOptions, ReferenceProfile
from jupyter_modelhub.monitoring.prediction_log import read_log_window, time_range
from jupyter_modelhub.monitoring.service import (
    DriftMonitor,
    ProfileCache,
    predictions_folder,
)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def drift_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    hub = Hub.init(tmp_path_factory.mktemp("drift") / "hub")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    hub.register(model, "clf", sample=X, reference=X)  # v0.0.1
    hub.register(model, "bare", sample=X)  # no reference
    return hub


def write_chunk(
    folder: Path,
    name: str,
    features: np.ndarray,
    start: dt.datetime,
    *,
    seconds_apart: float = 1.0,
    version: str = "v0.0.1",
    prediction: np.ndarray | None = None,
) -> None:
    """One chunk in the server's layout (serving/predlog.py), with chosen timestamps."""
    n = features.shape[0]
    micros = (start - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(
        microseconds=1
    )
    times = micros + (np.arange(n) * seconds_apart * 1e6).astype(np.int64)
    columns: dict[str, pa.Array] = {
        "timestamp": pa.array(times, type=pa.timestamp("us", tz="UTC")),
        "request_id": pa.array([f"r{i}" for i in range(n)]),
        "model": pa.array(["clf"] * n),
        "model_version": pa.array([version] * n),
        "variant": pa.array([None] * n, type=pa.string()),
        "key": pa.array([None] * n, type=pa.string()),
    }
    for j, feature in enumerate(FEATURES):
        columns[feature] = pa.array(features[:, j])
    if prediction is None:
        prediction = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(np.int64)
    columns["prediction"] = pa.array(prediction)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), folder / f"{name}.parquet")


def test_profile_is_built_once_and_cached_by_the_reference_md5(drift_hub: Hub) -> None:
    monitor = DriftMonitor(drift_hub.registry)
    md5 = drift_hub.show("clf").meta.reference.stored.md5  # type: ignore[union-attr]
    path = drift_hub.path / ".modelhub" / "cache" / "profiles" / f"{md5}.npz"
    path.unlink(missing_ok=True)
    profile = monitor.profile("clf")
    assert path.exists() and profile.names == tuple(FEATURES) and profile.n_rows == 2000
    # a second call reads the file (the registry is not asked for the sample again)
    calls: list[str] = []
    original = drift_hub.registry.reference_data
    drift_hub.registry.reference_data = lambda ref: calls.append(ref) or original(ref)  # type: ignore[method-assign]
    try:
        again = DriftMonitor(drift_hub.registry).profile("clf@v0.0.1")
    finally:
        del drift_hub.registry.reference_data
    assert calls == [] and again.names == profile.names


def test_a_damaged_cache_file_is_rebuilt_and_no_temp_file_stays(tmp_path: Path) -> None:
    cache = ProfileCache(tmp_path / "profiles")
    built: list[int] = []

    def build() -> ReferenceProfile:
        from jupyter_modelhub.monitoring import build_profile

        built.append(1)
        return build_profile({"x": np.arange(100.0)})

    cache.get("k", build)
    cache.path("k").write_bytes(b"half a file")
    assert cache.get("k", build).names == ("x",) and len(built) == 2
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == ["k.npz"]


def test_a_crash_while_saving_leaves_no_half_file(tmp_path: Path, monkeypatch) -> None:
    from jupyter_modelhub.monitoring import build_profile

    profile = build_profile({"x": np.arange(100.0)})
    cache = ProfileCache(tmp_path / "profiles")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.get("k", lambda: profile)
    assert list((tmp_path / "profiles").iterdir()) == []


def test_no_reference_says_how_to_register_one(drift_hub: Hub) -> None:
    with pytest.raises(NotFound) as info:
        DriftMonitor(drift_hub.registry).profile("bare")
    assert "bare@v0.0.1 has no reference data" in str(info.value)
    assert "--reference" in str(info.value)


def test_deployment_drift_reads_the_window_and_flags_the_shifted_feature(
    drift_hub: Hub, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "predictions"
    old = rng.normal(size=(1500, 4))
    old[:, 2] += 3.0  # two hours ago: f2 had drifted a lot
    write_chunk(folder, "a", old, NOW - dt.timedelta(hours=2), seconds_apart=0.5)
    recent = rng.normal(size=(1500, 4))
    recent[:, 1] += 1.0  # in the last hour: f1 moved
    write_chunk(folder, "b", recent, NOW - dt.timedelta(minutes=50), seconds_apart=1.0)
    write_chunk(
        folder, "c", rng.normal(size=(50, 4)), NOW - dt.timedelta(minutes=30), version="v9.9.9"
    )

    monitor = DriftMonitor(drift_hub.registry)
    result = monitor.deployment("fraud", "clf", predictions=folder, window="1h", now=NOW)
    assert result.n_rows == 1500  # the other version's rows and the old chunk are left out
    assert result.report.drifted_columns == ("f1",)
    assert result.output is not None and result.output.column == "prediction"
    assert result.output.drifted  # f1 feeds the decision: more positives
    assert result.first == NOW - dt.timedelta(minutes=50)

    everything = monitor.deployment(
        "fraud", "clf", predictions=folder, over_time="30m", now=NOW, options=DriftOptions()
    )
    assert everything.n_rows == 3000
    assert set(everything.report.drifted_columns) == {"f1", "f2"}
    timeline = everything.timeline
    assert timeline is not None and timeline.columns == tuple(FEATURES)
    f2 = timeline.columns.index("f2")
    assert timeline.drifted[f2, 0] and not timeline.drifted[f2, -1]
    assert everything.to_dict()["report"]["n_current"] == 3000

    since = monitor.deployment(
        "fraud", "clf", predictions=folder, since=NOW - dt.timedelta(minutes=40), now=NOW
    )
    assert since.n_rows == 1500 - 600  # rows one second apart from minute 50 on


def test_an_empty_window_says_how_many_rows_exist_and_since_when(
    drift_hub: Hub, tmp_path: Path
) -> None:
    folder = tmp_path / "predictions"
    monitor = DriftMonitor(drift_hub.registry)
    with pytest.raises(InvalidArgument, match=r"has logged no prediction answered by clf@v0\.0\.1"):
        monitor.deployment("fraud", "clf", predictions=folder, window="1h", now=NOW)
    write_chunk(folder, "a", np.zeros((10, 4)), NOW - dt.timedelta(days=2))
    with pytest.raises(InvalidArgument) as info:
        monitor.deployment("fraud", "clf", predictions=folder, window="1h", now=NOW)
    message = str(info.value)
    assert "logged no prediction answered by clf@v0.0.1 since 2026-11-22T11:00:00+00:00" in message
    assert "10 rows were logged from 2026-11-20T12:00:00+00:00" in message
    assert "Widen the window" in message
    with pytest.raises(InvalidArgument, match="not both"):
        monitor.deployment("fraud", "clf", predictions=folder, window="1h", since=NOW)


def test_rows_of_other_versions_are_named_when_none_of_ours_exist(
    drift_hub: Hub, tmp_path: Path
) -> None:
    folder = tmp_path / "predictions"
    write_chunk(folder, "a", np.zeros((10, 4)), NOW, version="v0.0.7")
    monitor = DriftMonitor(drift_hub.registry)
    with pytest.raises(InvalidArgument, match=r"10 rows by other versions: v0\.0\.7"):
        monitor.deployment("fraud", "clf", predictions=folder)
    result = monitor.deployment("fraud", "clf", predictions=folder, all_versions=True)
    assert result.n_rows == 10


def test_the_real_prediction_log_is_read(drift_hub: Hub, tmp_path: Path) -> None:
    from jupyter_modelhub.serving.features import FeatureBatch, FeatureSchema
    from jupyter_modelhub.serving.predlog import PredictionLog

    signature = drift_hub.show("clf").meta.signature
    assert signature is not None
    log = PredictionLog(
        tmp_path, FeatureSchema.from_signature(signature), model="clf", version="v0.0.1"
    )
    X = np.random.default_rng(3).normal(size=(300, 4))
    log.record("r1", FeatureBatch(X, None), (X[:, 0] > 0).astype(np.int64))
    log.close()
    result = DriftMonitor(drift_hub.registry).deployment("fraud", "clf", predictions=tmp_path)
    assert result.n_rows == 300 and result.report.n_features == 4
    assert not result.report.drifted_columns


def test_default_folder_is_the_deployment_runtime_folder(tmp_path: Path) -> None:
    from jupyter_modelhub.deploy.runtime import RuntimeFolder

    assert predictions_folder(tmp_path, "fraud") == RuntimeFolder(tmp_path, "fraud").predictions


def test_compare_a_dataframe_against_a_version(drift_hub: Hub) -> None:
    import pandas as pd

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(500, 4)), columns=FEATURES)
    frame["f3"] += 2
    report = DriftMonitor(drift_hub.registry).compare("clf", frame)
    assert report.drifted_columns == ("f3",)


def test_window_reads_only_wanted_columns_and_skips_old_chunks(tmp_path: Path) -> None:
    write_chunk(tmp_path, "old", np.zeros((5, 4)), NOW - dt.timedelta(days=1))
    write_chunk(tmp_path, "new", np.ones((5, 4)), NOW - dt.timedelta(minutes=1))
    table = read_log_window(tmp_path, ["f1"], when=time_range(window="1h", now=NOW))
    assert table.column_names == ["timestamp", "f1"] and table.num_rows == 5
    assert table.column("f1").to_pylist() == [1.0] * 5
