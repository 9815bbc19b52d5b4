"""Drift gauges: values, stale series, and promtool's verdict on the exposition."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jupyter_modelhub.monitoring import build_profile, compute_drift
from jupyter_modelhub.monitoring.metrics import DriftMetrics, drift_exposition


def _report(shift: float, columns: tuple[str, ...] = ("a", "b", "c")):
    rng = np.random.default_rng(0)
    reference = {c: rng.normal(size=2000) for c in columns}
    current = {c: rng.normal(size=2000) for c in columns}
    current["a"] = current["a"] + shift
    return compute_drift(build_profile(reference), current)


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_gauges_hold_the_report() -> None:
    report = _report(1.0)
    samples = _samples(drift_exposition({"fraud": report}))
    a = report.feature("a")
    key = (
        "modelhub_feature_drift_score",
        (("deployment", "fraud"), ("feature", "a"), ("test", a.test)),
    )
    assert samples[key] == pytest.approx(a.statistic)
    assert samples[("modelhub_dataset_drift_share", (("deployment", "fraud"),))] == pytest.approx(
        1 / 3
    )
    detected = {
        dict(labels)["feature"]: value
        for (name, labels), value in samples.items()
        if name == "modelhub_feature_drift_detected"
    }
    assert detected == {"a": 1.0, "b": 0.0, "c": 0.0}
    assert samples[("modelhub_drift_window_rows", (("deployment", "fraud"),))] == 2000


def test_an_update_replaces_the_deployments_series_only() -> None:
    metrics = DriftMetrics()
    metrics.update("fraud", _report(1.0, ("a", "b", "c")), at=1.0)
    metrics.update("churn", _report(0.0, ("a", "x")), at=1.0)
    metrics.update("fraud", _report(0.0, ("a", "b")), at=2.0)  # c no longer compared
    features = {
        (dict(labels)["deployment"], dict(labels)["feature"])
        for (name, labels), _ in _samples(metrics.exposition()).items()
        if name == "modelhub_feature_drift_score"
    }
    assert features == {("fraud", "a"), ("fraud", "b"), ("churn", "a"), ("churn", "x")}
    metrics.remove("churn")
    metrics.remove("never-there")
    text = metrics.exposition().decode()
    assert 'deployment="churn"' not in text and 'deployment="fraud"' in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_exposition() -> None:
    text = drift_exposition({"fraud": _report(1.0), "churn": _report(0.0)})
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert result.stdout + result.stderr == b""  # not even a lint warning
