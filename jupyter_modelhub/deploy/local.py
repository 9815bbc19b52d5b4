"""``LocalBackend``: replica processes on this machine, kept alive by a detached supervisor.

``apply`` hands the spec to the deployment's supervisor (``desired.json`` plus SIGHUP, or a
new supervisor if none runs) and polls ``state.json`` until the supervisor reports the
result of that very request. The supervisor runs in its own session, so the deployment
outlives the kernel, the Jupyter server or the terminal that started it.

If the supervisor itself dies (``kill -9``, the OOM killer), its replicas notice (their
lifeline pipe closes) and drain and exit within a few seconds: nothing serves unsupervised.
``status`` then says ``stopped`` with the reason, and nothing restarts by surprise (a status
read changes nothing). The desired state is still committed, so ``modelhub sync-deployments``
(``Hub.sync_deployments``) starts a new supervisor from it, as do ``deploy`` under the same
name, ``update`` and ``rollback``; ``stop`` just clears it away.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import BackendError, ModelHubError
from . import detached
from .backend import DeploymentBackend
from .records import DeploymentStatus, Phase, ReplicaStatus
from .runtime import RuntimeFolder
from .spec import DeploymentSpec
from .supervisor import READY_TIMEOUT, STOP_GRACE

POLL_INTERVAL = 0.02
PROBE_TIMEOUT = 1.0
LOG_ROTATE_BYTES = 10 * 1024 * 1024


def pick_free_port(host: str) -> int:
    """A port on ``host`` that nothing listens on right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def probe(port: int | None, timeout: float = PROBE_TIMEOUT) -> str:
    """``ready``, ``unready`` or ``unreachable``: what ``/v2/health/ready`` on 127.0.0.1:port says."""
    if not port:
        return "unreachable"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/v2/health/ready")
        return "ready" if connection.getresponse().status == 200 else "unready"
    except OSError:
        return "unreachable"
    finally:
        connection.close()


class LocalBackend(DeploymentBackend):
    """Deploys on this machine: one supervisor process per deployment, N replicas each."""

    target = "local"
    # every replica loads every variant and routes in-process: all policies, exactly
    traffic_kinds = frozenset({"split", "canary", "bluegreen", "shadow"})

    def runtime(self, name: str) -> RuntimeFolder:
        return RuntimeFolder(self.registry.root, name)

    def prepare(self, spec: DeploymentSpec) -> DeploymentSpec:
        return spec if spec.port else spec.replace(port=pick_free_port(spec.host))

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, spec: DeploymentSpec, timeout: float | None = None) -> None:
        self._checkout(spec)
        runtime = self.runtime(spec.name)
        request = time.time_ns()
        runtime.write_desired({"request": request, "spec": spec.to_dict()})
        spawned = None
        pid = runtime.supervisor_pid()
        if pid is not None:
            _signal(pid, signal.SIGHUP)
        else:
            # Replicas of a supervisor that died hold the port: they go before a new one starts.
            self._stop_orphans(spec.name)
            spawned = self._spawn(runtime)
        timeout = timeout or READY_TIMEOUT + 15
        deadline = time.monotonic() + timeout
        while True:
            state = runtime.read_state()
            update = state.get("update") or {}
            if int(update.get("request") or 0) >= request and update.get("result") != "in-progress":
                if update.get("result") == "failed":
                    raise BackendError(f"Deployment {spec.name} failed: {update.get('error')}")
                return
            alive = spawned is not None and spawned.poll() is None
            if not alive and not runtime.supervisor_running():
                last = runtime.tail(1)
                raise BackendError(
                    f"The supervisor of deployment {spec.name} exited"
                    + (f": {last[0]}" if last else "."),
                    hint=f"See `modelhub logs {spec.name}`.",
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"Deployment {spec.name} is not ready after {timeout:.0f} s.",
                    hint=f"See `modelhub status {spec.name}` and `modelhub logs {spec.name}`.",
                )
            time.sleep(POLL_INTERVAL)

    def _checkout(self, spec: DeploymentSpec) -> None:
        """Materialise the version's artifact once, here, rather than in N replicas at once
        (which would verify it N times, and race on the same folder). A failure is left for
        the replicas to report, in the model server's own words."""
        with contextlib.suppress(ModelHubError):
            self.registry.checkout(self.registry.show(spec.version_ref))

    def _spawn(self, runtime: RuntimeFolder) -> subprocess.Popen[bytes]:
        """Start a detached supervisor (own session, output to the log file)."""
        runtime.create()
        if runtime.log_file.is_file() and runtime.log_file.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(runtime.log_file, runtime.log_file.with_suffix(".log.1"))
        return detached.spawn("jupyter_modelhub.deploy.supervisor", self.registry.root, runtime)

    # -- status, logs, delete ---------------------------------------------------------------------
    def status(self, spec: DeploymentSpec, revision: int) -> DeploymentStatus:
        runtime = self.runtime(spec.name)
        running = runtime.supervisor_running()
        state = runtime.read_state()
        rows = (state.get("replicas") or []) if running else []
        with ThreadPoolExecutor(max_workers=max(1, min(len(rows), 16))) as pool:
            health = list(pool.map(lambda r: _health(r), rows))
        replicas = tuple(_replica(r, h) for r, h in zip(rows, health, strict=True))
        phase: Phase
        if running:
            phase = state.get("phase") or "starting"
        else:
            phase = "failed" if state.get("phase") == "failed" else "stopped"
        last_error = state.get("last_error")
        update = state.get("update") or {}
        if update.get("result") == "failed":
            last_error = update.get("error")
        if not running and state.get("phase") not in (None, "stopped", "failed"):
            last_error = _supervisor_gone(state, _orphan_replicas(self.registry.root, spec.name))
        return DeploymentStatus.of(
            spec,
            target=self.target,
            revision=revision,
            phase=phase,
            replicas=replicas,
            serving_version=state.get("serving_version") if running else None,
            last_error=last_error,
        )

    def logs(self, name: str, tail: int = 100) -> list[str]:
        return self.runtime(name).tail(tail)

    def delete(self, name: str) -> bool:
        runtime = self.runtime(name)
        pid = runtime.supervisor_pid()
        if pid is not None:
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE + 10
            while runtime.supervisor_running() and time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
            if runtime.supervisor_running():
                raise BackendError(f"The supervisor of deployment {name} did not stop.")
            detached.reap(pid)
        return self._stop_orphans(name) or pid is not None

    def _stop_orphans(self, name: str) -> bool:
        """Stop replicas left behind by a supervisor that was killed (kill -9), found by their
        command line, which names this hub and this deployment; ``True`` if there were any."""
        leftovers = _orphan_replicas(self.registry.root, name)
        for orphan in leftovers:
            _signal(orphan, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(_alive(p) for p in leftovers) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        for orphan in leftovers:
            _signal(orphan, signal.SIGKILL)
        return bool(leftovers)


def _supervisor_gone(state: dict[str, Any], leftovers: list[int]) -> str:
    """What ``status`` says of a deployment whose supervisor died without stopping it."""
    pid = state.get("supervisor_pid")
    text = f"its supervisor (pid {pid}) is gone (killed, or the machine restarted)"
    if leftovers:
        text += f"; {len(leftovers)} of its processes are still shutting down"
    return text + "; `modelhub sync-deployments` starts it again from its desired state"


def _health(row: dict[str, Any]) -> str:
    if row.get("state") in ("starting", "stopping"):
        return str(row["state"])
    return probe(row.get("admin_port"))


def _replica(row: dict[str, Any], health: str) -> ReplicaStatus:
    started = row.get("started")
    when = datetime.fromisoformat(started) if isinstance(started, str) else None
    uptime = (datetime.now(timezone.utc) - when).total_seconds() if when else None
    return ReplicaStatus(
        slot=int(row.get("slot", 0)),
        pid=row.get("pid"),
        port=row.get("port"),
        admin_port=row.get("admin_port"),
        version=str(row.get("version") or ""),
        state=str(row.get("state") or ""),
        health=health,
        started=when,
        uptime_s=round(uptime, 1) if uptime is not None else None,
        restarts=int(row.get("restarts") or 0),
        last_error=row.get("last_error"),
    )


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphan_replicas(hub: Path, name: str) -> list[int]:
    """Pids of replica processes of deployment ``name`` of ``hub`` (Linux: read from /proc)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    marks = (f"--hub\0{hub}\0".encode(), f"--deployment\0{name}\0".encode())
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if all(mark in cmdline for mark in marks):
            found.append(int(entry.name))
    return found
