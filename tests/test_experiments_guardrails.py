"""Canary guardrails: PromQL-style histogram quantiles and breach decisions."""

from __future__ import annotations

import json
import math

import pytest
from statsmodels.stats.proportion import proportions_ztest

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.guardrails import (
    GuardrailPolicy,
    LatencyHistogram,
    VariantWindow,
    check_guardrails,
    histogram_quantile,
)

INF = math.inf
# 100 requests: 10 <= 50 ms, 30 in (50, 100] ms, 30 in (100, 250] ms, 20 in (250, 500] ms,
# 7 in (0.5, 1] s, 3 above 1 s
HISTOGRAM = LatencyHistogram((0.05, 0.1, 0.25, 0.5, 1.0, INF), (10, 40, 70, 90, 97, 100))


@pytest.mark.parametrize(
    "q,expected",
    [
        (0.95, 0.5 + 0.5 * 5 / 7),  # rank 95 falls in (0.5, 1]: 5 of its 7 observations
        (0.5, 0.1 + 0.15 * 10 / 30),  # rank 50 in (0.1, 0.25]: 10 of 30
        (0.4, 0.1),  # rank 40 is exactly the top of (0.05, 0.1]
        (0.05, 0.05 * 5 / 10),  # first bucket starts at 0
        (0.99, 1.0),  # in the +Inf bucket: the largest finite bound
        (1.0, 1.0),
        (0.0, 0.0),
    ],
)
def test_histogram_quantile_by_hand(q: float, expected: float) -> None:
    assert histogram_quantile(q, HISTOGRAM) == pytest.approx(expected, abs=1e-12)


def test_histogram_quantile_edge_cases() -> None:
    assert histogram_quantile(0.95, LatencyHistogram((0.1, INF), (0, 0))) is None
    negative = LatencyHistogram((-1.0, 0.5, INF), (5, 10, 10))
    assert histogram_quantile(0.2, negative) == -1.0  # Prometheus: first bound <= 0 is returned
    with pytest.raises(InvalidArgument):
        histogram_quantile(1.5, HISTOGRAM)


def test_histogram_from_buckets_since_and_json() -> None:
    later = LatencyHistogram.from_buckets({"0.1": 30, "+Inf": 50, "0.5": 45})
    assert later.upper_bounds == (0.1, 0.5, INF)
    earlier = LatencyHistogram.from_buckets({"0.1": 10, "0.5": 20, "+Inf": 20})
    window = later.since(earlier)
    assert window.cumulative_counts == (20, 25, 30) and window.count == 30
    assert json.loads(json.dumps(window.to_dict(), allow_nan=False))["upper_bounds"][-1] == "+Inf"
    with pytest.raises(InvalidArgument, match="reset"):
        earlier.since(later)
    nested = VariantWindow("canary", 30, 0, window).to_dict()
    assert json.loads(json.dumps(nested, allow_nan=False))["latency"]["upper_bounds"][-1] == "+Inf"


@pytest.mark.parametrize(
    "bounds,counts,message",
    [
        ((0.1, 0.5), (1, 2), r"\+Inf"),
        ((0.5, 0.1, INF), (1, 2, 3), "increase"),
        ((0.1, INF), (5, 3), "cumulative"),
        ((0.1, INF), (1,), "one count per bound"),
        ((INF,), (1,), "at least 2 buckets"),
        ((0.1, INF), (-1, 3), "whole numbers"),
    ],
)
def test_bad_histograms(bounds, counts, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        LatencyHistogram(bounds, counts)


def test_within_guardrails() -> None:
    policy = GuardrailPolicy(max_error_rate=0.02, max_latency_seconds=1.0, min_requests=50)
    result = check_guardrails(VariantWindow("canary", 100, 1, HISTOGRAM), policy)
    assert result.status == "ok" and not result.breached and result.breaches == ()
    assert result.latency_seconds == pytest.approx(0.5 + 0.5 * 5 / 7)
    assert result.message == (
        "canary within guardrails: error rate 1.00%, latency p95 0.857 s over 100 requests"
    )
    json.dumps(result.to_dict(), allow_nan=False)


def test_threshold_breaches_say_which_and_why() -> None:
    policy = GuardrailPolicy(max_error_rate=0.01, max_latency_seconds=0.5, min_requests=50)
    result = check_guardrails(VariantWindow("canary", 100, 3, HISTOGRAM), policy)
    assert result.status == "breached" and result.breached
    assert [b.guardrail for b in result.breaches] == ["error_rate", "latency"]
    assert result.breaches[0].reason == (
        "error rate 3.00% (3 of 100 requests) is above the limit 1.00%"
    )
    assert result.breaches[1].reason == "latency p95 0.857 s is above the limit 0.5 s"
    assert result.message.startswith("canary breached: error rate 3.00%")


def test_insufficient_data_is_not_judged() -> None:
    policy = GuardrailPolicy(max_error_rate=0.01, min_requests=200)
    result = check_guardrails(VariantWindow("canary", 100, 50), policy)
    assert result.status == "insufficient_data" and result.breaches == ()
    assert result.message == "not enough requests to judge: n<200 (canary has 100)"


def test_error_rate_vs_champion_uses_one_sided_ztest() -> None:
    policy = GuardrailPolicy(error_rate_vs_champion=True, min_requests=100)
    champion = VariantWindow("champion", 10_000, 100)
    # 1.6% vs 1.0%: significantly worse
    worse = check_guardrails(VariantWindow("canary", 2000, 32), policy, champion)
    _, p = proportions_ztest([32, 100], [2000, 10_000], alternative="larger")
    assert worse.breached and worse.breaches[0].guardrail == "error_rate_vs_champion"
    assert f"p={p:.3g} < 0.05" in worse.breaches[0].reason
    assert worse.breaches[0].limit == pytest.approx(0.01)
    # 1.2% vs 1.0% on little traffic: not significant, so no breach despite being higher
    noisy = check_guardrails(VariantWindow("canary", 500, 6), policy, champion)
    assert noisy.status == "ok"
    # better than the champion is never a breach
    better = check_guardrails(VariantWindow("canary", 5000, 10), policy, champion)
    assert better.status == "ok"
    # the champion must have enough traffic too
    thin = check_guardrails(
        VariantWindow("canary", 500, 6), policy, VariantWindow("champion", 10, 0)
    )
    assert thin.status == "insufficient_data" and "champion has 10" in thin.message


def test_empty_histogram_skips_latency_with_a_note() -> None:
    policy = GuardrailPolicy(max_latency_seconds=0.5, min_requests=10)
    empty = LatencyHistogram((0.1, INF), (0, 0))
    result = check_guardrails(VariantWindow("canary", 100, 0, empty), policy)
    assert result.status == "ok" and result.latency_seconds is None
    assert "latency not judged" in result.message


@pytest.mark.parametrize(
    "call",
    [
        lambda: GuardrailPolicy(max_error_rate=1.5),
        lambda: GuardrailPolicy(max_latency_seconds=0),
        lambda: GuardrailPolicy(latency_quantile=1.0),
        lambda: GuardrailPolicy(min_requests=0),
        lambda: GuardrailPolicy(alpha=0),
        lambda: VariantWindow("v", 10, 11),
        lambda: VariantWindow("v", -1, 0),
        lambda: check_guardrails(
            VariantWindow("v", 10, 1), GuardrailPolicy(error_rate_vs_champion=True)
        ),
        lambda: check_guardrails(
            VariantWindow("v", 10, 1), GuardrailPolicy(max_latency_seconds=1.0)
        ),
    ],
)
def test_bad_guardrail_input(call) -> None:
    with pytest.raises(InvalidArgument):
        call()
