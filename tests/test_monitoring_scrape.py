"""Health from two scrapes of the real metrics families: rates, error share, quantiles."""

from __future__ import annotations

import pytest

from jupyter_modelhub.monitoring.scrape import (
    bucket_quantile,
    health_between,
    health_series,
    merge_scrapes,
    parse_metrics,
)
from jupyter_modelhub.serving.metrics import MetricLabels, ServerMetrics


def _server(variant: str) -> ServerMetrics:
    return ServerMetrics(MetricLabels("m", "v1", deployment="fraud", variant=variant))


def test_health_between_two_scrapes_matches_what_was_observed() -> None:
    blue, green = _server("blue"), _server("green")
    before = parse_metrics(blue.exposition().decode(), 100.0)
    for i in range(90):
        blue.observe_request("v2_infer", 200, 0.004 if i < 45 else 0.02)
    for _ in range(10):
        blue.observe_request("v2_infer", 503, 0.2)
    for _ in range(50):
        blue.observe_request("health", 200, 0.0001)  # probes are not predictions
    blue.observe_batch(requests=4, rows=8)
    blue.observe_batch(requests=1, rows=2)
    after = parse_metrics(blue.exposition().decode(), 110.0)
    [point] = [p for p in health_between(before, after) if p.variant == "blue"]
    assert point.deployment == "fraud" and point.requests == 100
    assert point.requests_per_second == pytest.approx(10.0)
    assert point.error_rate == pytest.approx(0.1)
    assert point.batch_size == pytest.approx(5.0)
    # 45 in (0.0025, 0.005], 45 in (0.01, 0.025], 10 in (0.1, 0.25]: rank 50 falls in the second
    assert 0.01 < point.p50_latency < 0.025  # type: ignore[operator]
    assert 0.1 < point.p99_latency <= 0.25  # type: ignore[operator]
    # green served nothing: a point with no rates
    assert green.exposition()  # (its own registry)


def test_a_restarted_server_counts_from_zero() -> None:
    first = parse_metrics(
        'modelhub_requests_total{deployment="d",variant="",endpoint="invocations",code="2xx"} 500\n',
        0.0,
    )
    second = parse_metrics(
        'modelhub_requests_total{deployment="d",variant="",endpoint="invocations",code="2xx"} 20\n',
        10.0,
    )
    [point] = health_between(first, second)
    assert point.requests == 20 and point.error_rate == 0.0 and point.p99_latency is None
    assert health_between(second, first) == []  # time must move forward


def test_replicas_add_up_and_series_follow_time() -> None:
    a, b = _server("blue"), _server("blue")
    scrapes = [merge_scrapes([parse_metrics(s.exposition().decode(), 0.0) for s in (a, b)])]
    a.observe_request("v2_infer", 200, 0.001)
    b.observe_request("v2_infer", 200, 0.001)
    scrapes.append(merge_scrapes([parse_metrics(s.exposition().decode(), 2.0) for s in (a, b)]))
    [point] = health_series(list(reversed(scrapes)))
    assert point.requests == 2 and point.requests_per_second == 1.0


def test_bucket_quantile_is_prometheus_interpolation() -> None:
    buckets = {0.1: 10.0, 0.2: 20.0, float("inf"): 20.0}
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.1)
    assert bucket_quantile(0.75, buckets) == pytest.approx(0.15)
    assert bucket_quantile(0.99, {0.1: 0.0, float("inf"): 5.0}) == 0.1  # open bucket: its floor
    assert bucket_quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None
