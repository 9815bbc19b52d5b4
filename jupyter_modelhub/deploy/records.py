"""Records of deployments for the adapters: status, replicas and revisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..experiments.policy import TrafficPolicy
from ..models import Record
from .spec import DeploymentSpec

# starting: first replicas loading; running: serving its spec; updating: a rollout is under way;
# degraded: serving with fewer ready replicas than asked; failed: its model never became ready;
# stopped: nothing runs (stopped by the user, or its supervisor is gone).
Phase = Literal["starting", "running", "updating", "degraded", "failed", "stopped"]


@dataclass(frozen=True)
class ReplicaStatus(Record):
    """One replica process: where it listens, what it serves, and how it is doing.

    ``health`` is what its admin port answered just now on ``/v2/health/ready``: ``ready``,
    ``unready`` or ``unreachable`` (``starting``/``stopping`` while the supervisor says so).
    """

    slot: int
    pid: int | None
    port: int | None
    admin_port: int | None
    version: str
    state: str
    health: str
    started: datetime | None
    uptime_s: float | None
    restarts: int
    last_error: str | None = None


@dataclass(frozen=True)
class DeploymentStatus(Record):
    """A deployment as it is: its desired state next to what actually runs."""

    name: str
    target: str
    model: str
    ref: str
    endpoint: str
    desired_version: str
    serving_version: str | None
    follow_stage: bool
    revision: int
    desired_replicas: int
    phase: Phase
    replicas: tuple[ReplicaStatus, ...] = ()
    last_error: str | None = None
    #: the deployment's experiment (running or ended), from its desired state
    traffic: TrafficPolicy | None = None
    #: the process that judges a running split's or canary's guardrails and takes the
    #: canary's steps, where it is one of its own (``running (pid N)``, ``not running``);
    #: ``None`` when no experiment needs one, or the target runs it inside (local)
    controller: str | None = None

    @classmethod
    def of(
        cls,
        spec: DeploymentSpec,
        *,
        target: str,
        revision: int,
        phase: Phase,
        replicas: tuple[ReplicaStatus, ...] = (),
        serving_version: str | None = None,
        last_error: str | None = None,
        endpoint: str | None = None,
        controller: str | None = None,
    ) -> DeploymentStatus:
        """The status of ``spec`` on a target: what the spec says, and what the target sees."""
        return cls(
            name=spec.name,
            target=target,
            model=spec.model,
            ref=spec.ref,
            endpoint=endpoint if endpoint is not None else spec.endpoint,
            desired_version=spec.version,
            serving_version=serving_version,
            follow_stage=spec.follow_stage,
            revision=revision,
            desired_replicas=spec.replicas,
            phase=phase,
            replicas=replicas,
            last_error=last_error,
            controller=controller,
        )

    @property
    def ready_replicas(self) -> int:
        return sum(1 for r in self.replicas if r.health == "ready")


@dataclass(frozen=True)
class Revision(Record):
    """One revision of a deployment: a commit that wrote ``deployments/NAME.yaml``."""

    revision: int
    commit: str
    author: str
    time: datetime
    message: str
    spec: DeploymentSpec

    @property
    def version(self) -> str:
        return self.spec.version
