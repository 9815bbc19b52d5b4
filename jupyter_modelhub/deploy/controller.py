"""``ExperimentController``: guardrails and canary steps, enforced while an experiment runs.

The supervisor of a local deployment runs one in a thread; for a docker or kubernetes
deployment a small detached process runs one (``deploy.watch``). Which replicas to scrape, and
how to read one's metrics, is theirs to say (``targets`` and ``fetch``: the local supervisor's
ready replicas and the containers found by their labels, on their admin ports; the pods,
through the Kubernetes API server's pod proxy). Every ``interval`` seconds it reads the desired state being served; while a split
or canary runs it scrapes every ready replica's ``/metrics``, sums each variant's answers, 5xx errors and latency
histogram over the current window (since the policy last changed: the counters each replica
had when the controller first saw it under this policy are subtracted), and judges each
challenger with ``experiments.guardrails.check_guardrails``:

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
import os
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from ..experiments.policy import TrafficPolicy
from .spec import DeploymentSpec

if TYPE_CHECKING:  # imported when an experiment is judged: they bring scipy.stats (0.5 s)
    from ..experiments.guardrails import GuardrailPolicy, GuardrailResult, VariantWindow

log = logging.getLogger(__name__)
PREDICTION_ENDPOINTS = ("v2_infer", "invocations")
INTERVAL_ENV = "MODELHUB_CONTROLLER_INTERVAL"  # seconds between experiment checks


def interval_from_env(default: float = 1.0) -> float:
    """Seconds between checks: ``$MODELHUB_CONTROLLER_INTERVAL`` (at least 0.1), else
    ``default``."""
    try:
        return max(0.1, float(os.environ.get(INTERVAL_ENV, default)))
    except ValueError:
        return default


@dataclass
class VariantCounters:
    """Cumulative counters of one variant, summed over replicas."""

    requests: int = 0
    errors: int = 0
    buckets: dict[float, float] = field(default_factory=dict)

    def add(self, other: VariantCounters, sign: int = 1) -> None:
        self.requests += sign * other.requests
        self.errors += sign * other.errors
        for bound, count in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0.0) + sign * count

    def window(self, name: str) -> VariantWindow:
        from ..experiments.guardrails import LatencyHistogram, VariantWindow

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


def admin_url(port: int, host: str = "127.0.0.1") -> str:
    """The admin address of a replica whose admin port is ``port`` on ``host``."""
    return f"http://{host}:{port}"


#: reads one scrape target's Prometheus text; raises ``OSError`` when it does not answer
Fetch = Callable[[str], str]


def fetch_metrics(admin: str, timeout: float = 2.0) -> str:
    """The Prometheus text at ``admin``'s ``/metrics`` (``admin``: an admin address such as
    ``http://127.0.0.1:PORT``, which serves it without a token)."""
    with urllib.request.urlopen(f"{admin}/metrics", timeout=timeout) as response:
        text: str = response.read().decode()
    return text


def scrape(
    target: str, deployment: str, fetch: Fetch = fetch_metrics
) -> dict[str, VariantCounters]:
    """One replica's counters per variant (empty if it did not answer); ``target`` is what
    ``fetch`` takes (by default an admin address)."""
    try:
        text = fetch(target)
    except OSError as exc:
        log.debug("no metrics from %s: %s", target, exc)
        return {}
    return parse_variant_counters(text, deployment)


class Window:
    """Counters since the window opened, over replicas that come and go."""

    def __init__(self) -> None:
        self.baselines: dict[str, dict[str, VariantCounters]] = {}

    def update(self, scrapes: dict[str, dict[str, VariantCounters]]) -> dict[str, VariantCounters]:
        """Each variant's counters since the window opened; a replica seen for the first time
        contributes from now on."""
        total: dict[str, VariantCounters] = {}
        for replica, counters in scrapes.items():
            baseline = self.baselines.setdefault(replica, counters)
            for name, now in counters.items():
                into = total.setdefault(name, VariantCounters())
                into.add(now)
                if name in baseline:
                    into.add(baseline[name], -1)
        return total


def guardrail_policy(policy: TrafficPolicy) -> GuardrailPolicy:
    from ..experiments.guardrails import GuardrailPolicy

    rails = policy.guardrails
    return GuardrailPolicy(
        max_error_rate=rails.max_error_rate,
        max_latency_seconds=rails.max_p95_seconds,
        latency_quantile=0.95,
        min_requests=rails.min_requests,
    )


def judge(policy: TrafficPolicy, counters: dict[str, VariantCounters]) -> list[GuardrailResult]:
    """The guardrail verdict on each challenger that took traffic."""
    from ..experiments.guardrails import GuardrailPolicy, check_guardrails

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
    """Watches one deployment's experiment; see the module docstring.

    Args:
        name: the deployment.
        read_spec: the desired state the replicas serve now (``None``: nothing to judge,
            e.g. while a rollout is under way).
        targets: the ready replicas that apply a spec's traffic policy, as ``fetch`` takes
            them.
        fetch: reads one target's Prometheus text (by default ``fetch_metrics``: a target is
            an admin address ``http://HOST:PORT``).
        roll_back: ends the experiment with a reason (``Experiments.roll_back``).
        advance: moves a canary to its next step (``Experiments.advance``).
    """

    def __init__(
        self,
        name: str,
        read_spec: Callable[[], DeploymentSpec | None],
        targets: Callable[[DeploymentSpec], list[str]],
        roll_back: Callable[[str], object],
        advance: Callable[[], object],
        *,
        fetch: Fetch | None = None,
        interval: float = 1.0,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self.name = name
        self.read_spec = read_spec
        self.targets = targets
        self.fetch: Fetch = fetch or fetch_metrics
        self.roll_back = roll_back
        self.advance = advance
        self.interval = interval
        self.say = say
        self.stopped = threading.Event()
        self.last: list[GuardrailResult] = []
        self._epoch: tuple[str, int, float] | None = None
        self._window = Window()

    def run(self) -> None:
        """Check every ``interval`` seconds until ``stop()``."""
        while not self.stopped.wait(self.interval):
            try:
                self.check()
            except Exception as exc:  # a bad scrape or commit must not kill its process
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
        targets = self.targets(spec)
        if not targets:
            return None
        epoch = (policy.experiment, policy.step, policy.weights.get(policy.challenger, 0.0))
        if epoch != self._epoch:  # a new policy: a new window
            self._epoch, self._window = epoch, Window()
        counters = self._window.update(
            {target: scrape(target, spec.name, self.fetch) for target in targets}
        )
        self.last = judge(policy, counters)
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
