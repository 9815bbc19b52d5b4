"""Drift results as Prometheus gauges, in their own ``CollectorRegistry``.

* ``modelhub_feature_drift_score{deployment,feature,test}``: the feature's drift score (the
  test's statistic: a distance, or the KS / chi-square statistic);
* ``modelhub_feature_drift_detected{deployment,feature}``: 1 when the feature drifted, else 0;
* ``modelhub_dataset_drift_share{deployment}``: the share of compared features that drifted;
* ``modelhub_drift_window_rows{deployment}``: rows in the compared window;
* ``modelhub_drift_last_run_timestamp_seconds{deployment}``: when the report was computed.

Each :meth:`DriftMetrics.update` replaces every series of its deployment, so a feature that is
no longer compared (or whose test changed) leaves no stale series behind. A score that is not a
number (a column with no value in the window) is not exported.
"""

from __future__ import annotations

import math
import threading
import time

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest

from jupyter_modelhub.monitoring.records import DriftReport

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DriftMetrics:
    """The drift gauges of any number of deployments; render with :meth:`exposition`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.score = Gauge(
            "modelhub_feature_drift_score",
            "Drift score of a feature against the reference (the test's statistic).",
            ("deployment", "feature", "test"),
            registry=self.registry,
        )
        self.detected = Gauge(
            "modelhub_feature_drift_detected",
            "1 when the feature drifted in the last report, else 0.",
            ("deployment", "feature"),
            registry=self.registry,
        )
        self.share = Gauge(
            "modelhub_dataset_drift_share",
            "Share of the compared features that drifted.",
            ("deployment",),
            registry=self.registry,
        )
        self.rows = Gauge(
            "modelhub_drift_window_rows",
            "Rows in the window the last drift report compared.",
            ("deployment",),
            registry=self.registry,
        )
        self.last_run = Gauge(
            "modelhub_drift_last_run_timestamp_seconds",
            "Unix time of the last drift report.",
            ("deployment",),
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._series: dict[str, tuple[list[tuple[str, str]], list[str]]] = {}

    def update(self, deployment: str, report: DriftReport, *, at: float | None = None) -> None:
        """Export ``report`` as the deployment's current drift (its old series are replaced)."""
        with self._lock:
            self._remove(deployment)
            scored: list[tuple[str, str]] = []
            flagged: list[str] = []
            for feature in report.features:
                if math.isfinite(feature.statistic):
                    self.score.labels(deployment, feature.column, feature.test).set(
                        feature.statistic
                    )
                    scored.append((feature.column, feature.test))
                self.detected.labels(deployment, feature.column).set(int(feature.drifted))
                flagged.append(feature.column)
            self.share.labels(deployment).set(report.drift_share)
            self.rows.labels(deployment).set(report.n_current)
            self.last_run.labels(deployment).set(time.time() if at is None else at)
            self._series[deployment] = (scored, flagged)

    def remove(self, deployment: str) -> None:
        """Drop every series of ``deployment`` (it was stopped)."""
        with self._lock:
            self._remove(deployment)

    def _remove(self, deployment: str) -> None:
        if deployment not in self._series:
            return
        scored, flagged = self._series.pop(deployment)
        for feature, test in scored:
            self.score.remove(deployment, feature, test)
        for feature in flagged:
            self.detected.remove(deployment, feature)
        for gauge in (self.share, self.rows, self.last_run):
            gauge.remove(deployment)

    def exposition(self) -> bytes:
        """The Prometheus text format (``CONTENT_TYPE``) of every drift gauge."""
        return generate_latest(self.registry)


def drift_exposition(reports: dict[str, DriftReport]) -> bytes:
    """The text exposition of ``{deployment: report}`` in one go (for a one-off export)."""
    metrics = DriftMetrics()
    for deployment, report in reports.items():
        metrics.update(deployment, report)
    return metrics.exposition()
