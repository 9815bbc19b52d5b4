"""``ExperimentController``: guardrails and canary steps, enforced while an experiment runs.

The supervisor of a local deployment runs one in a thread. Every ``interval`` seconds it
reads the committed desired state; while a split or canary runs it scrapes every ready
replica's ``/metrics`` (admin port), sums each variant's answers, 5xx errors and latency
histogram over the current window (since the policy last changed: the replicas that serve a
policy were started for it, so their counters start at zero), and judges each challenger with
``experiments.guardrails.check_guardrails``:

- a breach ends the experiment (``Experiments.roll_back``): a commit whose message and whose
  YAML (``traffic.state: rolled_back``, ``traffic.reason``) say which guardrail broke, and all
  traffic back to the champion;
- a canary whose guardrails held for a whole ``dwell_seconds`` (with at least
  ``min_requests`` answers) moves to its next step (``Experiments.advance``); at its last step
  it stays until someone promotes or stops it.

The controller changes nothing itself: it asks ``Experiments``, as a user would, so every
decision is in the deployment's history.
"""

from __future__ import annotations

import logging
import math
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from prometheus_client.parser import text_string_to_metric_families

from ..experiments.guardrails import (
    GuardrailPolicy,
    GuardrailResult,
    LatencyHistogram,
    VariantWindow,
    check_guardrails,
)
from ..experiments.policy import TrafficPolicy
from .spec import DeploymentSpec

log = logging.getLogger(__name__)
PREDICTION_ENDPOINTS = ("v2_infer", "invocations")


@dataclass
class VariantCounters:
    """Cumulative counters of one variant, summed over replicas."""

    requests: int = 0
    errors: int = 0
    buckets: dict[float, float] = field(default_factory=dict)

    def add(self, other: VariantCounters) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for bound, count in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0.0) + count

    def window(self, name: str) -> VariantWindow:
        latency = None
        if self.buckets and math.inf in self.buckets:
            bounds = sorted(self.buckets)
            latency = LatencyHistogram(tuple(bounds), tuple(int(self.buckets[b]) for b in bounds))
        return VariantWindow(name, self.requests, min(self.errors, self.requests), latency)


def parse_variant_counters(text: str, deployment: str) -> dict[str, VariantCounters]:
    """Each variant's prediction requests, 5xx answers and latency buckets in one scrape."""
    out: dict[str, VariantCounters] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("modelhub_requests", "modelhub_request_duration_seconds"):
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("deployment", deployment) != deployment:
                continue
            if labels.get("endpoint") not in PREDICTION_ENDPOINTS:
                continue
            counters = out.setdefault(labels.get("variant") or "champion", VariantCounters())
            if sample.name == "modelhub_requests_total":
                counters.requests += int(sample.value)
                if labels.get("code") == "5xx":
                    counters.errors += int(sample.value)
            elif sample.name == "modelhub_request_duration_seconds_bucket":
                bound = float(labels["le"])
                counters.buckets[bound] = counters.buckets.get(bound, 0.0) + sample.value
    return out


def scrape(
    admin_ports: Iterable[int], deployment: str, timeout: float = 2.0
) -> dict[str, VariantCounters]:
    """The variants' counters summed over the replicas that answered."""
    total: dict[str, VariantCounters] = {}
    for port in admin_ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
                text = r.read().decode()
        except OSError as exc:
            log.debug("no metrics from admin port %s: %s", port, exc)
            continue
        for name, counters in parse_variant_counters(text, deployment).items():
            total.setdefault(name, VariantCounters()).add(counters)
    return total


def guardrail_policy(policy: TrafficPolicy) -> GuardrailPolicy:
    rails = policy.guardrails
    return GuardrailPolicy(
        max_error_rate=rails.max_error_rate,
        max_latency_seconds=rails.max_p95_seconds,
        latency_quantile=0.95,
        min_requests=rails.min_requests,
    )


def judge(policy: TrafficPolicy, counters: dict[str, VariantCounters]) -> list[GuardrailResult]:
    """The guardrail verdict on each challenger that took traffic."""
    rails = guardrail_policy(policy)
    results = []
    for name in sorted(policy.challengers):
        window = counters.get(name, VariantCounters()).window(name)
        if window.latency is None:
            rails_here = GuardrailPolicy(
                max_error_rate=rails.max_error_rate, min_requests=rails.min_requests
            )
        else:
            rails_here = rails
        results.append(check_guardrails(window, rails_here))
    return results


class ExperimentController:
    """Watches one deployment's experiment; see the module docstring."""

    def __init__(
        self,
        name: str,
        read_spec: Callable[[], DeploymentSpec | None],
        admin_ports: Callable[[DeploymentSpec], list[int]],
        roll_back: Callable[[str], object],
        advance: Callable[[], object],
        *,
        interval: float = 1.0,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self.name = name
        self.read_spec = read_spec
        self.admin_ports = admin_ports
        self.roll_back = roll_back
        self.advance = advance
        self.interval = interval
        self.say = say
        self.stopped = threading.Event()
        self.last: list[GuardrailResult] = []

    def run(self) -> None:
        """Check every ``interval`` seconds until ``stop()``."""
        while not self.stopped.wait(self.interval):
            try:
                self.check()
            except Exception as exc:  # a bad scrape or commit must not kill the supervisor
                self.say(f"experiment check failed: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self.stopped.set()

    def check(self) -> str | None:
        """One round; what it did (``rolled back``/``advanced``) or None."""
        spec = self.read_spec()
        if spec is None or spec.traffic is None or not spec.traffic.running:
            return None
        policy = spec.traffic
        if policy.kind not in ("split", "canary"):
            return None
        ports = self.admin_ports(spec)
        if not ports:
            return None
        self.last = judge(policy, scrape(ports, spec.name))
        for result in self.last:
            if result.breached:
                reason = f"guardrail breached: {result.message}"
                self.say(f"{policy.kind} {policy.experiment}: {reason}; rolling back")
                self.roll_back(reason)
                return "rolled back"
        if policy.kind == "canary" and policy.step + 1 < len(policy.steps):
            held = all(r.status == "ok" for r in self.last)
            if held and _elapsed(policy.step_started) >= policy.dwell_seconds:
                share = policy.steps[policy.step + 1]
                self.say(f"canary {policy.experiment}: guardrails held; advancing to {share:.0%}")
                self.advance()
                return "advanced"
        return None


def _elapsed(iso: str) -> float:
    if not iso:
        return 0.0
    return (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()
