"""Reading a rollout from the API's status objects: done, under way, or failed (and why).

Everything here works on plain dicts in the API's own JSON shape (``camelCase``, as ``kubectl
get -o json`` prints them and as ``ApiClient.sanitize_for_serialization`` returns them), so it
is tested on recorded status objects without any client or cluster.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from ..records import DeploymentStatus, Phase, ReplicaStatus
from ..spec import DeploymentSpec
from .manifests import CONTAINER, TEMPLATE_LABEL

#: container waiting reasons that do not fix themselves: the rollout has failed
FAILING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
# ErrImagePull is retried by the kubelet (it becomes ImagePullBackOff): only a fatal one counts
_RETRIED = frozenset({"ErrImagePull"})
VERSION_LABEL = "app.kubernetes.io/version"

Progress = Literal["done", "progressing", "failed"]


@dataclass(frozen=True)
class Rollout:
    """Where a rollout stands, and in a sentence why."""

    progress: Progress
    message: str


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def container_problem(status: dict[str, Any]) -> tuple[str, str] | None:
    """``(reason, message)`` of a container that cannot run, else ``None``.

    The message is the waiting message with the last termination's own words (with
    ``terminationMessagePolicy: FallbackToLogsOnError``, the server's last log lines).
    """
    reason = _get(status, "state", "waiting", "reason")
    if reason not in FAILING_REASONS or reason in _RETRIED:
        terminated = _get(status, "state", "terminated")
        if not terminated or terminated.get("exitCode", 0) == 0:
            return None
        reason = terminated.get("reason") or "Error"
        message = _termination(terminated)
        return str(reason), message
    message = str(_get(status, "state", "waiting", "message") or "").strip()
    last = _get(status, "lastState", "terminated")
    if last:
        said = _termination(last)
        message = f"{message}; {said}" if message else said
    return str(reason), message


def _termination(terminated: dict[str, Any]) -> str:
    text = f"exit code {terminated.get('exitCode')}"
    words = str(terminated.get("message") or "").strip()
    if words:
        text += f": {words.splitlines()[-1]}"
    return text


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why ``pod`` cannot serve (``pod P: container C: Reason: message``), else ``None``."""
    name = _get(pod, "metadata", "name")
    for key in ("initContainerStatuses", "containerStatuses"):
        for status in _get(pod, "status", key) or []:
            found = container_problem(status)
            if found is not None:
                reason, message = found
                where = f"pod {name}: container {status.get('name')}"
                return f"{where}: {reason}" + (f": {message}" if message else "")
    if _get(pod, "status", "phase") == "Failed":
        return f"pod {name}: {_get(pod, 'status', 'reason') or 'Failed'}: " + str(
            _get(pod, "status", "message") or ""
        )
    unschedulable = [
        c
        for c in _get(pod, "status", "conditions") or []
        if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
    ]
    if unschedulable:
        return f"pod {name}: Unschedulable: {unschedulable[0].get('message', '')}"
    return None


def rollout(deployment: dict[str, Any], pods: list[dict[str, Any]], generation: int) -> Rollout:
    """How the rollout of the Deployment's ``generation`` stands.

    It is done when the Deployment controller has seen that generation and every wanted
    replica is updated and available (``kubectl rollout status``'s rule); it has failed when
    a pod of the new template cannot run (crash loop, image pull, bad config) or when the
    controller gives up (``ProgressDeadlineExceeded``).
    """
    spec_replicas = _get(deployment, "spec", "replicas")
    wanted = 1 if spec_replicas is None else int(spec_replicas)
    status = deployment.get("status") or {}
    template = _get(deployment, "spec", "template", "metadata", "labels", TEMPLATE_LABEL)
    current = [p for p in pods if _get(p, "metadata", "labels", TEMPLATE_LABEL) == template]
    problems = [text for text in map(pod_problem, current) if text]
    if problems:
        return Rollout("failed", "; ".join(problems))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("status") == "False":
            reason = condition.get("reason") or "not progressing"
            return Rollout("failed", f"{reason}: {condition.get('message', '')}".strip(": "))
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return Rollout("progressing", "waiting for the Deployment controller")
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    if updated < wanted:
        return Rollout("progressing", f"{updated} of {wanted} replicas updated")
    if total > updated:
        return Rollout("progressing", f"{total - updated} old replicas pending termination")
    if available < updated:
        return Rollout("progressing", f"{available} of {updated} updated replicas available")
    return Rollout("done", f"{available} of {wanted} replicas available")


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in _get(pod, "status", "conditions") or []
    )


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def replica(slot: int, pod: dict[str, Any], now: datetime | None = None) -> ReplicaStatus:
    """One pod as a replica: its version, phase, readiness, restarts and what is wrong."""
    statuses = _get(pod, "status", "containerStatuses") or []
    server = next((s for s in statuses if s.get("name") == CONTAINER), None)
    started = _when(_get(pod, "status", "startTime"))
    now = now or datetime.now(timezone.utc)
    waiting = _get(server, "state", "waiting", "reason") if server else None
    if _get(pod, "metadata", "deletionTimestamp"):
        state = "stopping"
    elif waiting:
        state = str(waiting)
    else:
        state = str(_get(pod, "status", "phase") or "Pending")
    return ReplicaStatus(
        slot=slot,
        pid=None,
        port=None,
        admin_port=None,
        version=str(_get(pod, "metadata", "labels", VERSION_LABEL) or ""),
        state=state,
        health="ready" if _is_ready(pod) else "unready",
        started=started,
        uptime_s=round((now - started).total_seconds(), 1) if started else None,
        restarts=sum(int(s.get("restartCount") or 0) for s in statuses),
        last_error=pod_problem(pod),
    )


def deployment_status(
    spec: DeploymentSpec,
    *,
    endpoint: str,
    revision: int,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    target: str = "kubernetes",
) -> DeploymentStatus:
    """The status of ``spec`` from its Deployment (``None``: not found) and its pods."""
    ordered = sorted(pods, key=lambda p: str(_get(p, "metadata", "name")))
    replicas = tuple(replica(i, pod) for i, pod in enumerate(ordered))
    phase: Phase
    last_error: str | None = None
    if deployment is None:
        phase, replicas = "stopped", ()
    else:
        generation = int(_get(deployment, "metadata", "generation") or 0)
        state = rollout(deployment, pods, generation)
        available = int(_get(deployment, "status", "availableReplicas") or 0)
        wanted = _get(deployment, "spec", "replicas")
        wanted = spec.replicas if wanted is None else int(wanted)
        if state.progress == "failed":
            last_error = state.message
            phase = "degraded" if available else "failed"
        elif state.progress == "progressing":
            phase = "updating" if available else "starting"
        else:
            phase = "running" if available >= wanted else "degraded"
        if last_error is None:
            last_error = next((r.last_error for r in replicas if r.last_error), None)
    serving = [r.version for r in replicas if r.health == "ready" and r.version]
    serving_version = None
    if serving:
        serving_version = (
            spec.version if spec.version in serving else Counter(serving).most_common(1)[0][0]
        )
    return DeploymentStatus.of(
        spec,
        target=target,
        revision=revision,
        phase=phase,
        replicas=replicas,
        serving_version=serving_version,
        last_error=last_error,
        endpoint=endpoint,
    )
