"""Health of a deployment from its servers' ``/metrics``, without Prometheus.

A :class:`Scrape` is one reading of the text exposition (``serving/metrics.py``), stamped with
the time it was taken. Between two scrapes of the same servers, :func:`health_between` computes
what Prometheus' ``rate()`` and ``histogram_quantile()`` would for each deployment and variant:
requests per second, error rate (5xx share), p50/p99 latency (linear interpolation inside the
latency buckets, as ``histogram_quantile`` does) and mean batch size, over the prediction
endpoints. A counter that went down (a restarted server) counts from zero, as in Prometheus.
Replicas of one deployment expose the same series: :func:`merge_scrapes` adds them up.
"""

from __future__ import annotations

import itertools
import math
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from jupyter_modelhub.errors import BackendError

PREDICT_ENDPOINTS = frozenset({"v2_infer", "invocations"})
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scrape:
    """One reading of a ``/metrics`` page: ``{(sample name, sorted labels): value}``."""

    time: float
    samples: Mapping[tuple[str, Labels], float] = field(default_factory=dict)

    def values(self, name: str) -> Iterable[tuple[dict[str, str], float]]:
        """The samples called ``name`` with their labels."""
        for (sample, labels), value in self.samples.items():
            if sample == name:
                yield dict(labels), value


def parse_metrics(text: str, time: float) -> Scrape:
    """A scrape of the Prometheus text format ``text`` taken at ``time`` (Unix seconds)."""
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Scrape(time, samples)


def fetch_metrics(url: str, *, time: float, timeout: float = 5.0) -> Scrape:
    """Scrape ``url`` (a server's ``/metrics``) now.

    Raises:
        BackendError: the server did not answer or answered with an error.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
    except OSError as exc:
        raise BackendError(
            f"Could not read metrics from {url}: {exc}", hint="Is the deployment running?"
        ) from None
    return parse_metrics(text, time)


def merge_scrapes(scrapes: Sequence[Scrape]) -> Scrape:
    """The sum of several servers' scrapes taken at about the same time (replicas)."""
    total: dict[tuple[str, Labels], float] = defaultdict(float)
    for scrape in scrapes:
        for key, value in scrape.samples.items():
            total[key] += value
    return Scrape(max((s.time for s in scrapes), default=0.0), dict(total))


@dataclass(frozen=True)
class HealthPoint:
    """A deployment variant's health between two scrapes (``start`` .. ``end``, Unix seconds).

    ``error_rate``, the latencies and ``batch_size`` are None when no request (or model call)
    was seen in the interval.
    """

    deployment: str
    variant: str
    start: float
    end: float
    requests: float
    requests_per_second: float
    error_rate: float | None
    p50_latency: float | None
    p99_latency: float | None
    batch_size: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _increase(before: float | None, after: float) -> float:
    if before is None or after < before:  # new series, or a restarted server
        return after
    return after - before


def _deltas(
    before: Scrape, after: Scrape, name: str, keep: Any = None
) -> dict[tuple[str, str], dict[Labels, float]]:
    """Per (deployment, variant): increase of ``name`` by its remaining labels (summed)."""
    out: dict[tuple[str, str], dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
    for (sample, labels), value in after.samples.items():
        if sample != name:
            continue
        tags = dict(labels)
        if keep is not None and not keep(tags):
            continue
        group = (tags.get("deployment", ""), tags.get("variant", ""))
        rest = tuple((k, v) for k, v in labels if k in ("code", "le"))
        out[group][rest] += _increase(before.samples.get((sample, labels)), value)
    return out


def bucket_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``histogram_quantile(q, ...)`` of cumulative bucket counts ``{upper bound: count}``."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):  # in the open-ended bucket: the last finite bound
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return bounds[-1]


def health_between(before: Scrape, after: Scrape) -> list[HealthPoint]:
    """Every deployment variant's health from ``before`` to ``after`` (see the module doc)."""
    seconds = after.time - before.time
    if seconds <= 0:
        return []

    def predicting(tags: dict[str, str]) -> bool:
        return tags.get("endpoint") in PREDICT_ENDPOINTS

    requests = _deltas(before, after, "modelhub_requests_total", predicting)
    durations = _deltas(before, after, "modelhub_request_duration_seconds_bucket", predicting)
    batch_sum = _deltas(before, after, "modelhub_batch_size_sum")
    batch_count = _deltas(before, after, "modelhub_batch_size_count")
    points = []
    for group in sorted(set(requests) | set(durations) | set(batch_count)):
        codes = requests.get(group, {})
        total = sum(codes.values())
        errors = sum(v for k, v in codes.items() if dict(k).get("code") == "5xx")
        buckets = {float(dict(k)["le"]): v for k, v in durations.get(group, {}).items()}
        calls = sum(batch_count.get(group, {}).values())
        rows = sum(batch_sum.get(group, {}).values())
        points.append(
            HealthPoint(
                deployment=group[0],
                variant=group[1],
                start=before.time,
                end=after.time,
                requests=total,
                requests_per_second=total / seconds,
                error_rate=errors / total if total else None,
                p50_latency=bucket_quantile(0.5, buckets),
                p99_latency=bucket_quantile(0.99, buckets),
                batch_size=rows / calls if calls else None,
            )
        )
    return points


def health_series(scrapes: Sequence[Scrape]) -> list[HealthPoint]:
    """Health between each pair of consecutive scrapes (ordered by time)."""
    ordered = sorted(scrapes, key=lambda s: s.time)
    return [p for a, b in itertools.pairwise(ordered) for p in health_between(a, b)]
