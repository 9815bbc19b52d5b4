"""The experiment controller of a docker deployment:
``python -m jupyter_modelhub.deploy.docker.watch --hub HUB --name NAME``.

On the local target the supervisor runs the ``ExperimentController`` in a thread. A docker
deployment has no supervisor (the engine restarts its containers), so ``DockerBackend.apply``
starts this small detached process when the spec's traffic is a running split or canary. It
runs the same controller: it scrapes the admin ``/metrics`` of the containers that apply the
spec (found by their labels; their admin port is in their ``MODELHUB-READY`` line), judges the
guardrails, and acts through the same ``Experiments`` verbs a user calls: a breach is a
``roll_back`` (a commit with the reason, then the spec applied again, which rolls the
containers), a canary that held for its dwell is an ``advance``.

Like the supervisor it outlives the kernel that started it (its own session), holds
``controller.lock`` in the deployment's runtime folder for its whole life (so exactly one runs,
and one that died never looks alive), and writes to the deployment's log. It exits by itself
when the experiment no longer runs (ended, promoted, rolled back), when the deployment is gone
(stopped, moved to another target, no container left), or when the engine stops answering;
``DockerBackend.delete`` stops it, ``sync-deployments`` starts it again if it died. It needs no
credential: ``/metrics`` is open on the admin port, and every change goes through the hub.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...registry.registry import ModelRegistry
from ..controller import ExperimentController, admin_url, interval_from_env
from ..runtime import RuntimeFolder
from ..spec import DeploymentSpec
from ..store import DeploymentStore

#: the traffic kinds whose guardrails and steps need a controller
CONTROLLED_KINDS = ("split", "canary")
ENGINE_PATIENCE = 30.0  # seconds without an answer from the engine before it gives up
STOP_TIMEOUT = 10.0
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])
_SPAWNED: list[subprocess.Popen[bytes]] = []


def needs_controller(spec: DeploymentSpec | None) -> bool:
    """Whether ``spec`` runs an experiment whose guardrails (and steps) must be watched."""
    return (
        spec is not None
        and spec.traffic is not None
        and spec.traffic.running
        and spec.traffic.kind in CONTROLLED_KINDS
    )


# -- managing the process (from the backend) -------------------------------------------------------
def controller_pid(runtime: RuntimeFolder) -> int | None:
    """The pid of the deployment's running controller, or ``None``."""
    return runtime.lock_holder(runtime.controller_lock)


def start(hub: Path, name: str) -> int | None:
    """Start the deployment's controller unless one runs; the pid of the one that runs."""
    runtime = RuntimeFolder(hub, name)
    pid = controller_pid(runtime)
    if pid is not None:
        return pid
    runtime.create()
    _reap()
    env = dict(os.environ)
    if Path(_PACKAGE_PARENT).name not in ("site-packages", "dist-packages"):
        # running from a source tree: the controller imports this same copy
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
    with open(runtime.log_file, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, "--hub", str(hub), "--name", name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=hub,
            env=env,
            start_new_session=True,
        )
    _SPAWNED.append(proc)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:  # until it holds its lock (or exited: one ran already)
        pid = controller_pid(runtime)
        if pid is not None or proc.poll() is not None:
            return pid
        time.sleep(0.02)
    return None


def stop(hub: Path, name: str) -> bool:
    """Stop the deployment's controller; ``True`` if one ran.

    The caller holds the deployment's operation lock, so the controller is not in the middle
    of a change (it would be waiting for that lock): ending it at once loses nothing.
    """
    runtime = RuntimeFolder(hub, name)
    pid = controller_pid(runtime)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while runtime.lock_held(runtime.controller_lock) and time.monotonic() < deadline:
        time.sleep(0.02)
    if runtime.lock_held(runtime.controller_lock):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(stopped: int | None = None) -> None:
    """Collect the exit status of the controllers this process started that have exited."""
    for proc in list(_SPAWNED):
        if proc.pid == stopped:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.poll() is not None:
            _SPAWNED.remove(proc)


# -- the process ------------------------------------------------------------------------------------
class DockerWatch:
    """One docker deployment's experiment controller; see the module docstring."""

    def __init__(self, hub: Path, name: str, client: Any = None) -> None:
        from .backend import DockerBackend

        self.hub = hub
        self.name = name
        self.registry = ModelRegistry(hub)
        self.store = DeploymentStore(self.registry)
        self.backend = DockerBackend(self.registry, client=client)
        self.runtime = RuntimeFolder(hub, name)
        self.stopped = threading.Event()
        self._ports: dict[tuple[str, str], int | None] = {}
        self._engine_ok = time.monotonic()
        self.controller = ExperimentController(
            name,
            read_spec=self.read_spec,
            admin_urls=self.admin_urls,
            roll_back=lambda reason: self._experiments().roll_back(name, reason),
            advance=lambda: self._experiments().advance(name),
            interval=interval_from_env(),
            say=lambda line: self.log(line),
        )

    def log(self, line: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        sys.stdout.write(f"{stamp} [controller] {line.rstrip()}\n")
        sys.stdout.flush()

    def _experiments(self) -> Any:
        from ..experiments import Experiments
        from ..service import Deployments

        return Experiments(Deployments(self.registry))

    def read_spec(self) -> DeploymentSpec | None:
        return self.store.get(self.name)

    def admin_urls(self, spec: DeploymentSpec) -> list[str]:
        """Admin addresses of the running containers that apply ``spec`` (its digest label)."""
        from .backend import LABEL_SPEC, _ready_line, _running, spec_digest

        digest = spec_digest(spec)
        urls = []
        for container in self.backend._containers(spec.name):
            if container.labels.get(LABEL_SPEC) != digest or not _running(container):
                continue
            started = (container.attrs.get("State") or {}).get("StartedAt", "")
            key = (container.id, started)
            if self._ports.get(key) is None:  # a restarted container has a new admin port
                ready = _ready_line(container)
                self._ports[key] = getattr(ready, "admin_port", None)
            port = self._ports[key]
            if port:
                urls.append(admin_url(port))
        return urls

    def gone(self) -> str | None:
        """Why this controller has nothing left to do, or ``None``."""
        if not self.hub.is_dir():
            return "the hub's folder is gone"
        spec = self.store.get(self.name)
        if spec is None:
            return "the deployment is gone"
        if spec.target != self.backend.target:
            return f"the deployment moved to the {spec.target} target"
        if not needs_controller(spec):
            return "no split or canary runs"
        try:
            containers = self.backend._containers(self.name)
        except Exception as exc:  # the engine went away: wait a while, it may come back
            if time.monotonic() - self._engine_ok > ENGINE_PATIENCE:
                return f"the Docker engine does not answer ({exc})"
            return None
        self._engine_ok = time.monotonic()
        if not containers:
            return "no container of the deployment is left"
        return None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        lock = self.runtime.acquire_lock(self.runtime.controller_lock)
        if lock is None:
            self.log("another controller watches this deployment; exiting")
            return 0
        self.log(f"started (pid {os.getpid()}, a check every {self.controller.interval:g} s)")
        try:
            while True:
                try:
                    reason = self.gone()
                    if reason is None:
                        self.controller.check()
                except Exception as exc:  # a bad scrape or commit must not end the watch
                    reason = None
                    self.log(f"experiment check failed: {type(exc).__name__}: {exc}")
                if reason is not None:
                    self.log(f"exiting: {reason}")
                    return 0
                if self.stopped.wait(self.controller.interval):
                    return 0
        finally:
            os.close(lock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Watch the experiment of one docker deployment (guardrails, canary steps)."
    )
    parser.add_argument("--hub", required=True, help="the hub's folder")
    parser.add_argument("--name", required=True, help="the deployment's name")
    args = parser.parse_args(argv)
    return DockerWatch(Path(args.hub).resolve(), args.name).run()


if __name__ == "__main__":
    sys.exit(main())
