"""Guardrails for canaries: has a variant broken its error-rate or latency limits in a window?

Inputs are the counters a server already exports: requests, errors, and a latency histogram as
Prometheus-style cumulative buckets (``le`` upper bounds in seconds, the last one ``+Inf``). The
latency quantile is interpolated within its bucket exactly like PromQL's
``histogram_quantile``. Everything here is a pure function of those counters; the canary
controller decides what to do with the answer.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.inference import check_alpha, two_proportion_ztest
from jupyter_modelhub.experiments.records import BinarySummary
from jupyter_modelhub.models import Record

GuardrailName = Literal["error_rate", "latency", "error_rate_vs_champion"]
GuardrailStatus = Literal["ok", "breached", "insufficient_data"]


@dataclass(frozen=True)
class LatencyHistogram(Record):
    """Cumulative bucket counts: ``cumulative_counts[i]`` observations were ``<= upper_bounds[i]``.

    The last upper bound must be ``inf`` (Prometheus' ``+Inf`` bucket, the total count).
    ``to_dict`` writes it as the string ``"+Inf"`` so the JSON stays valid.

    Raises:
        InvalidArgument: unequal lengths, bounds not increasing, no ``+Inf`` bucket, or counts
            that are negative or decrease.
    """

    upper_bounds: tuple[float, ...]
    cumulative_counts: tuple[int, ...]

    def __post_init__(self) -> None:
        bounds = tuple(float(b) for b in self.upper_bounds)
        counts = tuple(self.cumulative_counts)
        object.__setattr__(self, "upper_bounds", bounds)
        if len(bounds) != len(counts) or len(bounds) < 2:
            raise InvalidArgument(
                f"A latency histogram needs at least 2 buckets and one count per bound "
                f"({len(bounds)} bounds, {len(counts)} counts).",
                hint="Pass the cumulative count of every 'le' bucket, '+Inf' included.",
            )
        if bounds[-1] != math.inf:
            raise InvalidArgument(
                "The last latency bucket must be +Inf.",
                hint="Include the '+Inf' bucket (the total number of observations).",
            )
        if any(not b < c for b, c in itertools.pairwise(bounds)) or math.isnan(bounds[0]):
            raise InvalidArgument(
                f"Bucket upper bounds must increase strictly: {bounds}.",
                hint="Sort the buckets by their 'le' bound.",
            )
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
            raise InvalidArgument(f"Bucket counts must be whole numbers >= 0: {counts}.")
        if any(b < a for a, b in itertools.pairwise(counts)):
            raise InvalidArgument(
                f"Bucket counts must be cumulative (never decreasing): {counts}.",
                hint="Pass Prometheus 'le' counts, not per-bucket counts.",
            )

    @property
    def count(self) -> int:
        """The number of observations (the ``+Inf`` bucket)."""
        return self.cumulative_counts[-1]

    @classmethod
    def from_buckets(cls, buckets: Mapping[str | float, int]) -> LatencyHistogram:
        """From ``{le: count}`` as Prometheus exposes it, e.g. ``{"0.1": 4, "+Inf": 9}``."""
        try:
            pairs = sorted((float(bound), count) for bound, count in buckets.items())
        except ValueError:
            raise InvalidArgument(
                f"Bucket bounds must be numbers or '+Inf': {list(buckets)}."
            ) from None
        return cls(tuple(b for b, _ in pairs), tuple(c for _, c in pairs))

    def since(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """The observations made after ``earlier`` (a window of two scrapes of one counter).

        Raises:
            InvalidArgument: other buckets, or counts lower than ``earlier`` (a counter reset).
        """
        if self.upper_bounds != earlier.upper_bounds:
            raise InvalidArgument("The two histograms have different buckets.")
        counts = tuple(
            a - b for a, b in zip(self.cumulative_counts, earlier.cumulative_counts, strict=True)
        )
        if any(c < 0 for c in counts):
            raise InvalidArgument(
                "The later histogram has fewer observations than the earlier one.",
                hint="The counter was reset (a restart); start a new window.",
            )
        return LatencyHistogram(self.upper_bounds, counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "upper_bounds": ["+Inf" if math.isinf(b) else b for b in self.upper_bounds],
            "cumulative_counts": list(self.cumulative_counts),
        }


def histogram_quantile(q: float, histogram: LatencyHistogram) -> float | None:
    """The ``q``-quantile, interpolated linearly within its bucket as PromQL does.

    As in Prometheus: a quantile that falls in the ``+Inf`` bucket is the largest finite bound;
    the first bucket starts at 0 unless its bound is <= 0 (then that bound is returned).
    ``None`` when the histogram has no observations (Prometheus returns NaN).

    Raises:
        InvalidArgument: ``q`` outside [0, 1].
    """
    if not 0.0 <= q <= 1.0:
        raise InvalidArgument(f"The quantile must lie in [0, 1], not {q}.", hint="p95 is 0.95.")
    counts, bounds = histogram.cumulative_counts, histogram.upper_bounds
    total = counts[-1]
    if total == 0:
        return None
    rank = q * total
    # first finite bucket whose cumulative count reaches the rank (sort.Search in Prometheus)
    b = bisect.bisect_left(counts[:-1], rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = bounds[b - 1] if b > 0 else 0.0
    below = counts[b - 1] if b > 0 else 0
    in_bucket = counts[b] - below
    if in_bucket == 0:  # only when rank is 0 (q = 0)
        return start
    return start + (bounds[b] - start) * ((rank - below) / in_bucket)


@dataclass(frozen=True)
class VariantWindow(Record):
    """One variant's counters over the window being judged."""

    name: str
    requests: int
    errors: int
    latency: LatencyHistogram | None = None

    def __post_init__(self) -> None:
        for what in ("requests", "errors"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(f"{what} must be a whole number >= 0, not {value!r}.")
        if self.errors > self.requests:
            raise InvalidArgument(
                f"{self.name}: errors ({self.errors}) exceed requests ({self.requests}).",
                hint="Count every request, failed or not, in requests.",
            )

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["latency"] = self.latency.to_dict() if self.latency is not None else None
        return data


@dataclass(frozen=True)
class GuardrailPolicy(Record):
    """The limits a variant must respect; ``None`` switches a limit off.

    Args:
        max_error_rate: a fixed limit on ``errors / requests`` (0.01 = 1%).
        max_latency_seconds: a limit on the ``latency_quantile`` of the latency histogram.
        latency_quantile: which quantile the latency limit applies to (0.95 = p95).
        min_requests: below this many requests in the window nothing is judged.
        error_rate_vs_champion: breach when the variant's error rate is significantly higher
            than the champion's (one-sided pooled two-proportion z-test at ``alpha``) — an
            alternative (or addition) to ``max_error_rate`` that tolerates the champion's
            own error level.
        alpha: the level of that test.
    """

    max_error_rate: float | None = None
    max_latency_seconds: float | None = None
    latency_quantile: float = 0.95
    min_requests: int = 100
    error_rate_vs_champion: bool = False
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.max_error_rate is not None and not 0.0 <= self.max_error_rate <= 1.0:
            raise InvalidArgument(
                f"max_error_rate must lie in [0, 1], not {self.max_error_rate}.",
                hint="Give it as a fraction: 0.01 for 1%.",
            )
        if self.max_latency_seconds is not None and not self.max_latency_seconds > 0:
            raise InvalidArgument(
                f"max_latency_seconds must be positive, not {self.max_latency_seconds}."
            )
        if not 0.0 < self.latency_quantile < 1.0:
            raise InvalidArgument(
                f"latency_quantile must lie strictly between 0 and 1, not {self.latency_quantile}.",
                hint="Use 0.95 for p95.",
            )
        if (
            isinstance(self.min_requests, bool)
            or not isinstance(self.min_requests, int)
            or self.min_requests < 1
        ):
            raise InvalidArgument(
                f"min_requests must be a whole number >= 1, not {self.min_requests!r}."
            )
        check_alpha(self.alpha)


@dataclass(frozen=True)
class GuardrailBreach(Record):
    """One broken guardrail: what was observed, the limit, and why in words."""

    guardrail: GuardrailName
    observed: float
    limit: float
    reason: str


@dataclass(frozen=True)
class GuardrailResult(Record):
    """The verdict on one variant's window; ``message`` says it in one sentence."""

    variant: str
    status: GuardrailStatus
    requests: int
    error_rate: float | None
    latency_quantile: float
    latency_seconds: float | None
    breaches: tuple[GuardrailBreach, ...]
    message: str

    @property
    def breached(self) -> bool:
        return self.status == "breached"


def _p_label(q: float) -> str:
    return f"p{q * 100:g}"


def check_guardrails(
    variant: VariantWindow, policy: GuardrailPolicy, champion: VariantWindow | None = None
) -> GuardrailResult:
    """Judge ``variant``'s window against ``policy`` (and the champion's window if compared).

    Returns ``insufficient_data`` while the variant (or, for the comparison, the champion) has
    fewer than ``policy.min_requests`` requests; a latency limit is skipped, and said so, when
    the histogram has no observations.

    Raises:
        InvalidArgument: the policy compares with the champion but none is given, or limits
            latency but the window has no histogram.
    """
    if policy.error_rate_vs_champion and champion is None:
        raise InvalidArgument(
            "The policy compares error rates with the champion, but no champion window was given.",
            hint="Pass champion=VariantWindow(...) or set error_rate_vs_champion=False.",
        )
    if policy.max_latency_seconds is not None and variant.latency is None:
        raise InvalidArgument(
            f"The policy limits latency but {variant.name}'s window has no latency histogram.",
            hint="Pass latency=LatencyHistogram(...) or set max_latency_seconds=None.",
        )
    q = policy.latency_quantile
    latency = histogram_quantile(q, variant.latency) if variant.latency is not None else None
    label = _p_label(q)

    def result(
        status: GuardrailStatus, breaches: Sequence[GuardrailBreach], message: str
    ) -> GuardrailResult:
        return GuardrailResult(
            variant=variant.name,
            status=status,
            requests=variant.requests,
            error_rate=variant.error_rate,
            latency_quantile=q,
            latency_seconds=latency,
            breaches=tuple(breaches),
            message=message,
        )

    short = [w for w in (variant, champion if policy.error_rate_vs_champion else None) if w]
    short = [w for w in short if w.requests < policy.min_requests]
    if short:
        who = ", ".join(f"{w.name} has {w.requests:,}" for w in short)
        return result(
            "insufficient_data",
            (),
            f"not enough requests to judge: n<{policy.min_requests} ({who})",
        )

    error_rate = variant.errors / variant.requests
    breaches: list[GuardrailBreach] = []
    notes: list[str] = []
    if policy.max_error_rate is not None and error_rate > policy.max_error_rate:
        breaches.append(
            GuardrailBreach(
                guardrail="error_rate",
                observed=error_rate,
                limit=policy.max_error_rate,
                reason=(
                    f"error rate {error_rate:.2%} ({variant.errors:,} of {variant.requests:,} "
                    f"requests) is above the limit {policy.max_error_rate:.2%}"
                ),
            )
        )
    if policy.error_rate_vs_champion and champion is not None:
        test = two_proportion_ztest(
            BinarySummary(champion.requests, champion.errors),
            BinarySummary(variant.requests, variant.errors),
            alternative="larger",
        )
        champion_rate = champion.errors / champion.requests
        if test.p_value < policy.alpha:
            breaches.append(
                GuardrailBreach(
                    guardrail="error_rate_vs_champion",
                    observed=error_rate,
                    limit=champion_rate,
                    reason=(
                        f"error rate {error_rate:.2%} is significantly higher than "
                        f"{champion.name}'s {champion_rate:.2%} (one-sided z-test "
                        f"p={test.p_value:.3g} < {policy.alpha:g})"
                    ),
                )
            )
    if policy.max_latency_seconds is not None:
        if latency is None:
            notes.append("latency not judged: the histogram has no observations")
        elif latency > policy.max_latency_seconds:
            breaches.append(
                GuardrailBreach(
                    guardrail="latency",
                    observed=latency,
                    limit=policy.max_latency_seconds,
                    reason=(
                        f"latency {label} {latency:.3g} s is above the limit "
                        f"{policy.max_latency_seconds:.3g} s"
                    ),
                )
            )
    if breaches:
        message = f"{variant.name} breached: " + "; ".join(b.reason for b in breaches)
        return result("breached", breaches, message)
    held = f"error rate {error_rate:.2%}"
    if latency is not None:
        held += f", latency {label} {latency:.3g} s"
    message = f"{variant.name} within guardrails: {held} over {variant.requests:,} requests"
    if notes:
        message += " (" + "; ".join(notes) + ")"
    return result("ok", breaches, message)
