"""``Experiments``: A/B tests, canaries, blue-green switches and shadows on a deployment.

An experiment is a ``TrafficPolicy`` in the deployment's desired state: starting, advancing,
stopping or promoting one is a commit of ``deployments/NAME.yaml`` (so the YAML's history says
what happened and why) followed by the backend making it true, replicas replaced one at a time
with the policy's variants loaded (zero downtime; a challenger that cannot load never receives
traffic and the old replicas keep serving). The analysis reads the deployment's prediction
and feedback logs.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..errors import InvalidArgument, NotFound
from ..experiments.analysis import ExperimentAnalysis, analyse, experiment_outcomes
from ..experiments.policy import (
    CHAMPION,
    DEFAULT_CANARY_STEPS,
    Guardrails,
    TrafficPolicy,
    new_experiment_id,
    parse_split,
    parse_steps,
)
from ..experiments.shadow import ShadowReport, compare_predictions
from ..registry.refs import validate_name
from ..serving.outcomes import FEEDBACK_FOLDER
from .records import DeploymentStatus
from .runtime import RuntimeFolder
from .service import Deployments
from .spec import DeploymentSpec

KINDS = ("split", "canary", "bluegreen", "shadow")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Experiments:
    """The experiments of one hub's deployments; ``Hub`` delegates its ``ab_*`` verbs here."""

    def __init__(self, deployments: Deployments) -> None:
        self.deployments = deployments
        self.store = deployments.store
        self.registry = deployments.registry

    # -- changing -------------------------------------------------------------------------------
    def start(
        self,
        name: str,
        challenger: str,
        *,
        kind: str = "split",
        split: str | None = None,
        key: str | None = None,
        steps: str | tuple[float, ...] | None = None,
        dwell_seconds: float = 300.0,
        guardrails: Guardrails | dict[str, Any] | None = None,
        variant: str = "challenger",
        timeout: float | None = None,
    ) -> DeploymentStatus:
        """Put ``challenger`` (a version of the deployment's model) next to its champion.

        ``kind`` is ``split`` (``split="90/10"``, champion first), ``canary`` (``steps``
        "5,25,50,100", one per ``dwell_seconds`` while ``guardrails`` hold), ``bluegreen``
        (all traffic to the challenger once it is ready; the champion stays loaded until the
        experiment ends) or ``shadow`` (the challenger sees a copy of every request, callers
        only the champion's answers). ``key`` names a request field for sticky assignment;
        the ``X-Modelhub-Key`` header always works.

        Raises:
            InvalidArgument: a bad option, the champion's own version, or an experiment
                already running on the deployment.
            BackendError: the challenger could not be served (the champion keeps serving).
        """
        if kind not in KINDS:
            raise InvalidArgument(
                f"Unknown experiment kind {kind!r}.", hint=f"Use one of {', '.join(KINDS)}."
            )
        validate_name(variant, "variant name")
        if key is not None:
            key = key.strip()
            if not key:
                raise InvalidArgument("An empty --key names no field.")
        rails = (
            guardrails if isinstance(guardrails, Guardrails) else Guardrails.from_dict(guardrails)
        )
        with self.deployments._operation(name):
            spec = self.store.require(name)
            if spec.traffic is not None and spec.traffic.running:
                raise InvalidArgument(
                    f"Deployment {name!r} already runs a {spec.traffic.kind} experiment "
                    f"({spec.traffic.experiment}).",
                    hint=f"End it first: `ab stop {name}` or `ab promote {name}`.",
                )
            ref = self.deployments._model_ref(spec.model, challenger)
            version = self.registry.resolve(ref).version
            if version == spec.version:
                raise InvalidArgument(
                    f"{spec.model}@{version} is already the champion of {name!r}.",
                    hint="Choose another version as the challenger.",
                )
            ramp: tuple[float, ...] = ()
            if kind == "split":
                weights = parse_split(split or "50/50", [variant])
            elif kind == "canary":
                ramp = parse_steps(steps) if isinstance(steps, str) else tuple(steps or ())
                ramp = ramp or DEFAULT_CANARY_STEPS
                weights = {variant: ramp[0], CHAMPION: 1.0 - ramp[0]}
            else:  # blue-green starts the new side warm, with no traffic; shadow answers none
                weights = {variant: 0.0, CHAMPION: 1.0}
            now = _now()
            policy = TrafficPolicy(
                kind=kind,  # type: ignore[arg-type]
                experiment=new_experiment_id(),
                challengers={variant: version},
                weights=weights,
                key=key,
                steps=ramp,
                dwell_seconds=dwell_seconds,
                guardrails=rails,
                started=now,
                step_started=now,
            )
            updated = spec.replace(traffic=policy)
            backend = self.deployments.backend(spec.target)
            backend.check_traffic(updated)  # before anything is recorded
            self.store.save(updated, f"Start {_describe(policy, spec)}")
            backend.apply(updated, timeout=timeout)
            if kind == "bluegreen":  # both sides ready in every replica: switch all at once
                switched = updated.replace(
                    traffic=policy.replace(weights={variant: 1.0, CHAMPION: 0.0})
                )
                self.store.save(switched, f"Switch {name} to {variant} {version} (blue-green)")
                backend.apply(switched, timeout=timeout)
        return self.deployments.status(name)

    def stop(
        self,
        name: str,
        reason: str = "stopped by the user",
        *,
        kind: str | None = None,
        timeout: float | None = None,
    ) -> DeploymentStatus:
        """End the running experiment (of ``kind``, if given): all traffic to the champion."""
        return self._end(name, "stopped", reason, timeout, kind)

    def roll_back(
        self, name: str, reason: str, *, timeout: float | None = None
    ) -> DeploymentStatus:
        """End the running experiment because a guardrail broke (``reason`` says which)."""
        return self._end(name, "rolled_back", reason, timeout)

    def _end(
        self, name: str, state: str, reason: str, timeout: float | None, kind: str | None = None
    ) -> DeploymentStatus:
        with self.deployments._operation(name):
            spec = self.store.require(name)
            policy = self._running(spec, kind)
            ended = spec.replace(traffic=policy.replace(state=state, reason=reason))
            verb = "Roll back" if state == "rolled_back" else "Stop"
            self.store.save(ended, f"{verb} {policy.kind} {policy.experiment} on {name}: {reason}")
            self.deployments.backend(spec.target).apply(ended, timeout=timeout)
        return self.deployments.status(name)

    def promote(
        self,
        name: str,
        variant: str | None = None,
        *,
        stage: str | None = None,
        kind: str | None = None,
        timeout: float | None = None,
    ) -> DeploymentStatus:
        """Make a challenger the champion: the deployment serves it alone, and it takes the
        stage the deployment follows (or ``stage``) in the registry, in one step."""
        with self.deployments._operation(name):
            spec = self.store.require(name)
            policy = self._running(spec, kind)
            winner = variant or policy.challenger
            if winner not in policy.challengers:
                raise InvalidArgument(
                    f"{winner!r} is not a challenger of {name!r}.",
                    hint=f"The challengers are {', '.join(sorted(policy.challengers))}.",
                )
            version = policy.challengers[winner]
            stage = stage or spec.stage
            if stage is not None:
                self.registry.promote(
                    f"{spec.model}@{version}",
                    stage,
                    f"Won {policy.kind} {policy.experiment} on deployment {name}",
                )
            promoted = spec.replace(
                version=version,
                ref=spec.ref
                if spec.follow_stage and stage == spec.stage
                else f"{spec.model}@{version}",
                traffic=None,
            )
            self.store.save(
                promoted,
                f"Promote {winner} {version} of {name} ({policy.kind} {policy.experiment}); "
                f"was {spec.version}",
            )
            self.deployments.backend(spec.target).apply(promoted, timeout=timeout)
        return self.deployments.status(name)

    def advance(self, name: str, *, timeout: float | None = None) -> DeploymentStatus:
        """Move a canary to its next step now (what the controller does after each dwell)."""
        with self.deployments._operation(name):
            spec = self.store.require(name)
            policy = self._running(spec)
            if policy.kind != "canary":
                raise InvalidArgument(f"{name!r} runs a {policy.kind}, not a canary.")
            if policy.step + 1 >= len(policy.steps):
                raise InvalidArgument(
                    f"The canary on {name!r} is at its last step ({policy.steps[-1]:.0%}).",
                    hint=f"Promote it: `ab promote {name}`.",
                )
            step = policy.step + 1
            share = policy.steps[step]
            moved = policy.replace(
                step=step,
                weights={policy.challenger: share, CHAMPION: 1.0 - share},
                step_started=_now(),
            )
            self.store.save(
                spec.replace(traffic=moved),
                f"Advance canary {policy.experiment} on {name} to {share:.0%}",
            )
            self.deployments.backend(spec.target).apply(
                spec.replace(traffic=moved), timeout=timeout
            )
        return self.deployments.status(name)

    # -- reading --------------------------------------------------------------------------------
    def policy(self, name: str) -> TrafficPolicy:
        """The deployment's current (or last) experiment."""
        spec = self.store.require(name)
        if spec.traffic is None:
            raise NotFound(
                f"Deployment {name!r} has no experiment.",
                hint=f"Start one: `ab start {name} --challenger VERSION --split 90/10`.",
            )
        return spec.traffic

    def analysis(
        self,
        name: str,
        *,
        metric: str = "auto",
        alpha: float = 0.05,
        min_samples: int = 100,
        higher_is_better: bool = True,
    ) -> ExperimentAnalysis:
        """The A/B answer from the outcomes posted so far (see ``experiments.analysis``)."""
        if metric not in ("auto", "rate", "mean"):
            raise InvalidArgument(f"Unknown metric {metric!r}.", hint="Use auto, rate or mean.")
        policy = self.policy(name)
        self.deployments.collect_logs(name)
        folder = RuntimeFolder(self.registry.root, name).predictions
        data = experiment_outcomes(
            folder,
            folder / FEEDBACK_FOLDER,
            policy.variants,
            since=datetime.fromisoformat(policy.started) if policy.started else None,
            untagged=None,  # answered before the replicas took the experiment's policy
        )
        return analyse(
            policy.experiment,
            data,
            metric=metric,  # type: ignore[arg-type]
            alpha=alpha,
            min_samples=min_samples,
            higher_is_better=higher_is_better,
        )

    def shadow_report(self, name: str, top_k: int = 10) -> ShadowReport:
        """Champion vs challenger answers on the same requests (a shadow, or any experiment's
        requests that both answered)."""
        import pyarrow.parquet as pq

        policy = self.policy(name)
        self.deployments.collect_logs(name)
        folder = RuntimeFolder(self.registry.root, name).predictions
        since = datetime.fromisoformat(policy.started).timestamp() if policy.started else 0.0
        answers: dict[str, dict[str, Any]] = {CHAMPION: {}, policy.challenger: {}}
        for path in sorted(folder.glob("*.parquet")):
            table = pq.read_table(
                path, columns=["timestamp", "request_id", "variant", "prediction"]
            )
            times = table.column("timestamp").cast("int64").to_numpy() / 1e6
            for t, rid, variant, prediction in zip(
                times,
                table.column("request_id").to_pylist(),
                table.column("variant").to_pylist(),
                table.column("prediction").to_pylist(),
                strict=True,
            ):
                side = answers.get(variant or CHAMPION)
                if side is not None and t >= since and rid not in side:
                    side[rid] = prediction
        both = [rid for rid in answers[CHAMPION] if rid in answers[policy.challenger]]
        if not both:
            raise InvalidArgument(
                f"No request of {name!r} was answered by both the champion and "
                f"{policy.challenger} yet.",
                hint="Send traffic to a shadow experiment, then ask again.",
            )
        report = compare_predictions(
            np.asarray([answers[CHAMPION][r] for r in both]),
            np.asarray([answers[policy.challenger][r] for r in both]),
            top_k=top_k,
        )
        named = tuple(
            dataclasses.replace(row, request_id=both[row.index]) for row in report.top_disagreements
        )
        return dataclasses.replace(report, top_disagreements=named)

    @staticmethod
    def _running(spec: DeploymentSpec, kind: str | None = None) -> TrafficPolicy:
        if spec.traffic is None or not spec.traffic.running:
            raise InvalidArgument(
                f"Deployment {spec.name!r} runs no experiment.",
                hint=f"Start one: `ab start {spec.name} --challenger VERSION`.",
            )
        if kind is not None and spec.traffic.kind != kind:
            raise InvalidArgument(
                f"Deployment {spec.name!r} runs a {spec.traffic.kind}, not a {kind}.",
                hint=f"End it with `{'ab' if spec.traffic.kind == 'split' else spec.traffic.kind}"
                f" stop {spec.name}` (or `ab stop`, which ends any experiment).",
            )
        return spec.traffic


def _describe(policy: TrafficPolicy, spec: DeploymentSpec) -> str:
    challenger = policy.challengers[policy.challenger]
    head = f"{policy.kind} {policy.experiment} on {spec.name}: {spec.version} vs {challenger}"
    if policy.kind == "split":
        shares = "/".join(f"{policy.weights[n] * 100:g}" for n in (CHAMPION, policy.challenger))
        return f"{head} ({shares})"
    if policy.kind == "canary":
        return f"{head} (steps {', '.join(f'{s:.0%}' for s in policy.steps)})"
    return head
