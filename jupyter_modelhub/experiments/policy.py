"""Traffic policies: which variant of a deployment answers which request.

A deployment serves its *champion* (the version in its spec) and, during an experiment, one or
more *challengers* (other versions of the same model). A ``TrafficPolicy`` says how requests
are shared between them, and it means the same thing on every deployment target:

- ``split`` (A/B/n): each variant gets its weight's share;
- ``canary``: the challenger's share follows a ramp of ``steps`` (e.g. 5% -> 25% -> 50% ->
  100%), one step per ``dwell_seconds`` while the guardrails hold;
- ``bluegreen``: the challenger is started and checked ready next to the champion, then all
  traffic moves at once (weights 0/100); the champion stays loaded for a fast switch back;
- ``shadow``: every caller gets the champion's answer; the challenger gets a copy of each
  request, and both answers are logged for comparison.

Assignment is sticky when a request carries a key (the ``X-Modelhub-Key`` header, or the
request field named by ``key`` such as ``user_id``): the key and the experiment id are hashed
with BLAKE2b (never Python's salted ``hash()``), so a key gets the same variant on every
replica, after restarts and on every machine. Challengers take the low end of the unit
interval, in name order, and the champion the rest, so a canary that grows its share only ever
moves keys from the champion to the challenger, never back and forth. Without a key the draw
is weighted random.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import random
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidArgument
from ..models import Record

CHAMPION = "champion"
KEY_HEADER = "X-Modelhub-Key"
VARIANT_HEADER = "X-Modelhub-Variant"
PolicyKind = Literal["split", "canary", "bluegreen", "shadow"]
POLICY_KINDS: tuple[str, ...] = ("split", "canary", "bluegreen", "shadow")
PolicyState = Literal["running", "stopped", "promoted", "rolled_back"]
DEFAULT_CANARY_STEPS = (0.05, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Guardrails(Record):
    """Limits a challenger must hold while it takes traffic; a breach ends the experiment.

    ``max_error_rate`` is the share of 5xx answers; ``max_p95_seconds`` the 95th percentile of
    request duration (``None``: not checked); neither is judged on fewer than ``min_requests``
    requests in the window.
    """

    max_error_rate: float = 0.05
    max_p95_seconds: float | None = 0.5
    min_requests: int = 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise InvalidArgument(
                f"max_error_rate must be between 0 and 1, not {self.max_error_rate!r}."
            )
        if self.max_p95_seconds is not None and self.max_p95_seconds <= 0:
            raise InvalidArgument(
                f"max_p95_seconds must be positive, not {self.max_p95_seconds!r}."
            )
        if self.min_requests < 1:
            raise InvalidArgument(f"min_requests must be at least 1, not {self.min_requests!r}.")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Guardrails:
        data = dict(data or {})
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InvalidArgument(
                f"Unknown guardrail(s): {', '.join(unknown)}.",
                hint="The guardrails are max_error_rate, max_p95_seconds and min_requests.",
            )
        return cls(**data)


@dataclass(frozen=True)
class TrafficPolicy(Record):
    """How a deployment's requests are shared between its champion and its challengers.

    ``challengers`` maps a variant name to a version of the deployment's model; ``weights``
    gives every variant's current share (the champion's included, under ``champion``).
    """

    kind: PolicyKind
    experiment: str
    challengers: dict[str, str]
    weights: dict[str, float]
    key: str | None = None
    steps: tuple[float, ...] = ()
    step: int = 0
    dwell_seconds: float = 300.0
    guardrails: Guardrails = field(default_factory=Guardrails)
    state: PolicyState = "running"
    reason: str = ""
    started: str = ""
    step_started: str = ""

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise InvalidArgument(
                f"Unknown traffic policy {self.kind!r}.",
                hint=f"Use one of {', '.join(POLICY_KINDS)}.",
            )
        if not self.challengers:
            raise InvalidArgument("An experiment needs at least one challenger.")
        if CHAMPION in self.challengers:
            raise InvalidArgument(f"'{CHAMPION}' names the deployment's own version.")
        names = {CHAMPION, *self.challengers}
        if set(self.weights) != names:
            raise InvalidArgument(
                f"Weights must be given for exactly {', '.join(sorted(names))}; "
                f"got {', '.join(sorted(self.weights)) or 'none'}."
            )
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise InvalidArgument("Weights must be non-negative and not all zero.")
        if self.kind == "canary":
            if not self.steps or any(not 0 < s <= 1 for s in self.steps):
                raise InvalidArgument(
                    "A canary's steps are shares between 0 and 1 (e.g. 0.05,0.25,0.5,1).",
                )
            if list(self.steps) != sorted(self.steps):
                raise InvalidArgument("A canary's steps must grow (e.g. 5% -> 25% -> 50%).")
            if not 0 <= self.step < len(self.steps):
                raise InvalidArgument(f"Canary step {self.step} is not one of its steps.")
        if self.kind in ("canary", "shadow", "bluegreen") and len(self.challengers) != 1:
            raise InvalidArgument(f"A {self.kind} has exactly one challenger.")
        if self.dwell_seconds <= 0:
            raise InvalidArgument("dwell_seconds must be positive.")

    # -- what the policy says ----------------------------------------------------------------
    @property
    def challenger(self) -> str:
        """The first (for canary, blue-green and shadow: the only) challenger's name."""
        return sorted(self.challengers)[0]

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def variants(self) -> tuple[str, ...]:
        """Every variant: the challengers in name order, then the champion."""
        return (*sorted(self.challengers), CHAMPION)

    def serving_weights(self) -> dict[str, float]:
        """The shares that answer callers: a shadow answers nobody, a finished experiment
        sends everything to the champion."""
        if not self.running:
            return {name: (1.0 if name == CHAMPION else 0.0) for name in self.variants}
        if self.kind == "shadow":
            return {name: (1.0 if name == CHAMPION else 0.0) for name in self.variants}
        total = sum(self.weights.values())
        return {name: self.weights[name] / total for name in self.variants}

    @property
    def shadow(self) -> str | None:
        """The variant that receives copies of live traffic, if any."""
        return self.challenger if self.kind == "shadow" and self.running else None

    def replace(self, **changes: Any) -> TrafficPolicy:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficPolicy:
        if not isinstance(data, dict):
            raise InvalidArgument("A traffic policy must be a mapping.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgument(f"Unknown traffic policy field(s): {', '.join(unknown)}.")
        values = dict(data)
        values["guardrails"] = Guardrails.from_dict(values.get("guardrails"))
        values["steps"] = tuple(float(s) for s in values.get("steps") or ())
        values["weights"] = {str(k): float(v) for k, v in (values.get("weights") or {}).items()}
        values["challengers"] = {
            str(k): str(v) for k, v in (values.get("challengers") or {}).items()
        }
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidArgument(f"Invalid traffic policy: {exc}.") from exc


def new_experiment_id() -> str:
    """A fresh experiment id: keys are re-shuffled between experiments, never within one."""
    return secrets.token_hex(6)


def parse_split(text: str, challengers: list[str]) -> dict[str, float]:
    """Weights from ``"90/10"`` (champion first, then each challenger), summing to 1.

    Raises:
        InvalidArgument: not one number per variant, negative, or all zero.
    """
    parts = [p.strip().rstrip("%") for p in str(text).split("/")]
    names = [CHAMPION, *challengers]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != len(names) or any(v < 0 for v in values) or sum(values) <= 0:
        example = "/".join(["90", *["10"] * len(challengers)]) if challengers else "100"
        raise InvalidArgument(
            f"Invalid split {text!r}: give one share per variant ({', '.join(names)}).",
            hint=f"For example --split {example} (champion first).",
        )
    total = sum(values)
    return {name: value / total for name, value in zip(names, values, strict=True)}


def parse_steps(text: str) -> tuple[float, ...]:
    """Canary steps from ``"5,25,50,100"`` (percent) or ``"0.05,0.25,0.5,1"``."""
    try:
        values = [float(p.strip().rstrip("%")) for p in str(text).split(",") if p.strip()]
    except ValueError:
        values = []
    if values and max(values) > 1:
        values = [v / 100.0 for v in values]
    if not values or any(not 0 < v <= 1 for v in values) or values != sorted(values):
        raise InvalidArgument(
            f"Invalid canary steps {text!r}.",
            hint="Give growing percentages, e.g. --steps 5,25,50,100.",
        )
    return tuple(values)


# -- assignment ---------------------------------------------------------------------------------
def key_position(experiment: str, key: str) -> float:
    """Where ``key`` falls in [0, 1) for ``experiment``: stable across processes and machines."""
    digest = hashlib.blake2b(
        key.encode("utf-8", "surrogatepass"),
        digest_size=8,
        person=b"modelhub-ab",
        key=experiment.encode()[:64],
    ).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Assigner:
    """Picks a variant for each request under one policy (built once per policy change)."""

    def __init__(self, policy: TrafficPolicy, rng: random.Random | None = None) -> None:
        self.experiment = policy.experiment
        weights = policy.serving_weights()
        self.names = [n for n in policy.variants if weights[n] > 0]
        bounds, total = [], 0.0
        for name in self.names:
            total += weights[name]
            bounds.append(total)
        self.bounds = [b / total for b in bounds]
        self.bounds[-1] = 1.0
        self.only = self.names[0] if len(self.names) == 1 else None
        self.random = (rng or random.Random()).random

    def choose(self, key: str | None) -> str:
        """The variant for a request with sticky ``key`` (None: a weighted random draw)."""
        if self.only is not None:
            return self.only
        u = key_position(self.experiment, key) if key is not None else self.random()
        return self.names[bisect.bisect_right(self.bounds, u)]
