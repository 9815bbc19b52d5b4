"""Quality over time: outcome means per window and variant, joined from the logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.quality import quality_over_time

T0 = 497_222 * 3600.0  # a whole hour (UTC)


def _times(seconds: np.ndarray) -> pa.Array:
    return pa.array((seconds * 1e6).astype(np.int64), type=pa.timestamp("us", tz="UTC"))


def write_logs(folder: Path, accuracy_by_hour: list[float], per_hour: int = 400) -> None:
    """Predictions over len(accuracy_by_hour) hours; outcome 1 (right) with that accuracy."""
    rng = np.random.default_rng(0)
    n = per_hour * len(accuracy_by_hour)
    times = T0 + np.repeat(np.arange(len(accuracy_by_hour)) * 3600.0, per_hour) + rng.random(n)
    ids = [f"r{i}" for i in range(n)]
    (folder / "feedback").mkdir(parents=True)
    pq.write_table(
        pa.table({"timestamp": _times(times), "request_id": ids, "key": [None] * n,
                  "variant": [None] * n}),
        folder / "a.parquet",
    )  # fmt: skip
    right = rng.random(n) < np.repeat(accuracy_by_hour, per_hour)
    pq.write_table(
        pa.table({"timestamp": _times(times + 1), "request_id": ids, "key": [None] * n,
                  "outcome": right.astype(float)}),
        folder / "feedback" / "a.parquet",
    )  # fmt: skip


def test_a_drop_in_quality_shows_in_its_window(tmp_path: Path) -> None:
    write_logs(tmp_path, [0.9, 0.9, 0.6])
    timeline = quality_over_time(tmp_path, tmp_path / "feedback", step_seconds=3600)
    assert timeline.metric == "rate"
    assert [p.variant for p in timeline.points] == ["champion"] * 3
    assert [p.n for p in timeline.points] == [400, 400, 400]
    first, _, last = timeline.points
    assert first.low < 0.9 < first.high and last.high < first.low  # a real drop, outside noise
    assert abs(last.mean - 0.6) < 0.06


def test_without_outcomes_it_says_how_to_post_them(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="No outcome was posted") as info:
        quality_over_time(tmp_path, tmp_path / "feedback", step_seconds=60)
    assert "/feedback" in str(info.value)
    with pytest.raises(InvalidArgument, match="step must be positive"):
        quality_over_time(tmp_path, tmp_path / "feedback", step_seconds=0)
