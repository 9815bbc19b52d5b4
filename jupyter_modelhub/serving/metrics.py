"""Prometheus metrics of one model server process, in its own ``CollectorRegistry``.

Every series carries ``model``, ``version``, ``deployment`` and ``variant`` (one set per
variant the process serves: a deployment under an A/B test serves two or more); requests add
``endpoint`` (a small fixed set) and ``code`` (``2xx``/``4xx``/``5xx``), so the number of
series stays small and fixed. ``MetricFamilies`` are the process's collectors; each variant's
``ServerMetrics`` binds its children once at start-up, so the request path only increments
pre-built series.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

ENDPOINTS = ("v2_infer", "invocations", "metadata", "health", "metrics", "other")
CODE_CLASSES = ("2xx", "4xx", "5xx")
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# the classic text format (what generate_latest writes for names like ours), which every
# Prometheus version scrapes
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class MetricLabels:
    """What identifies this process's series."""

    model: str
    version: str
    deployment: str = ""
    variant: str = ""
    flavor: str = ""
    runtime: str = ""


class MetricFamilies:
    """The collectors of one process (one registry), shared by the variants it serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        base = ("model", "version", "deployment", "variant")
        self.requests = Counter(
            "modelhub_requests",
            "HTTP requests answered, by endpoint and status class.",
            (*base, "endpoint", "code"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "modelhub_request_duration_seconds",
            "Time from a request's arrival to its response, by endpoint.",
            (*base, "endpoint"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "modelhub_requests_in_progress",
            "Requests being handled now.",
            base,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "modelhub_batch_size",
            "Rows per model call (micro-batching coalesces concurrent requests).",
            base,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "modelhub_batch_requests",
            "Requests coalesced into one model call.",
            base,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "modelhub_predictions",
            "Rows predicted.",
            base,
            registry=self.registry,
        )
        self.info = Gauge(
            "modelhub_model_info",
            "The model version this process serves (always 1).",
            (*base, "flavor", "runtime"),
            registry=self.registry,
        )
        self.logged = Counter(
            "modelhub_prediction_log_rows",
            "Rows written to the prediction log.",
            base,
            registry=self.registry,
        )
        self.dropped = Counter(
            "modelhub_prediction_log_dropped_rows",
            "Rows not logged because the log's buffer was full or a write failed.",
            base,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


class ServerMetrics:
    """The pre-bound series of one variant (one model version) served by this process."""

    def __init__(self, labels: MetricLabels, families: MetricFamilies | None = None) -> None:
        self.families = families = families or MetricFamilies()
        values = (labels.model, labels.version, labels.deployment, labels.variant)
        requests, duration = families.requests, families.duration
        in_progress, batch_size = families.in_progress, families.batch_size
        batch_requests, predictions = families.batch_requests, families.predictions
        logged, dropped, info = families.logged, families.dropped, families.info
        self.requests = {
            (e, c): requests.labels(*values, e, c) for e in ENDPOINTS for c in CODE_CLASSES
        }
        self.duration = {e: duration.labels(*values, e) for e in ENDPOINTS}
        self.in_progress = in_progress.labels(*values)
        self.batch_size = batch_size.labels(*values)
        self.batch_requests = batch_requests.labels(*values)
        self.predictions = predictions.labels(*values)
        self.log_rows = logged.labels(*values)
        self.log_dropped = dropped.labels(*values)
        info.labels(*values, labels.flavor, labels.runtime).set(1)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        endpoint = endpoint if endpoint in self.duration else "other"
        code = "2xx" if status < 400 else "4xx" if status < 500 else "5xx"
        self.requests[(endpoint, code)].inc()
        self.duration[endpoint].observe(seconds)

    def observe_batch(self, requests: int, rows: int) -> None:
        self.batch_size.observe(rows)
        self.batch_requests.observe(requests)
        self.predictions.inc(rows)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric of the process."""
        return self.families.exposition()
