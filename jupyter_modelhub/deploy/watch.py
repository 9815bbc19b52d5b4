"""The experiment controller of a deployment whose replicas have no supervisor:
``python -m jupyter_modelhub.deploy.watch --hub HUB --name NAME``.

On the local target the supervisor runs the ``ExperimentController`` in a thread. A docker or
kubernetes deployment has none (the engine, or the cluster, restarts its replicas), so its
backend's ``apply`` starts this small detached process when the spec's traffic is a running
split or canary. It runs the same controller on the machine that deployed: it scrapes the
``/metrics`` of the replicas that apply the spec, judges the guardrails, and acts through the
same ``Experiments`` verbs a user calls: a breach is a ``roll_back`` (a commit with the reason,
then the spec applied again, which rolls the replicas), a canary that held for its dwell is an
``advance``.

What differs per target is a ``ScrapeSource`` (``SOURCES``): which replicas to scrape and how
to read one's metrics (docker: the containers' admin ports on the host; kubernetes: the pods'
``/metrics`` through the API server's pod proxy), and whether the deployment still runs.

Like the supervisor it outlives the kernel that started it (its own session), holds
``controller.lock`` in the deployment's runtime folder for its whole life (so exactly one runs,
and one that died never looks alive), and writes to the deployment's log. It exits by itself
when the experiment no longer runs (ended, promoted, rolled back), when the deployment is gone
(stopped, moved to another target, nothing left running), or when the target stops answering;
the backend's ``delete`` stops it, ``sync-deployments`` starts it again if it died (e.g. the
machine was off). It needs no credential of its own: metrics are open, the cluster is reached
with the user's kubeconfig, and every change goes through the hub.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import BackendError
from ..registry.registry import ModelRegistry
from . import detached
from .controller import ExperimentController, interval_from_env
from .runtime import RuntimeFolder
from .spec import DeploymentSpec
from .store import DeploymentStore

#: the traffic kinds whose guardrails and steps need a controller
CONTROLLED_KINDS = ("split", "canary")
PATIENCE = 30.0  # seconds without an answer from the target before it gives up
STOP_TIMEOUT = 10.0
#: where each target's ``ScrapeSource`` lives (module:class, imported when used)
SOURCES = {
    "docker": "jupyter_modelhub.deploy.docker.watch:DockerSource",
    "kubernetes": "jupyter_modelhub.deploy.kubernetes.watch:PodProxySource",
}


def needs_controller(spec: DeploymentSpec | None) -> bool:
    """Whether ``spec`` runs an experiment whose guardrails (and steps) must be watched."""
    return (
        spec is not None
        and spec.traffic is not None
        and spec.traffic.running
        and spec.traffic.kind in CONTROLLED_KINDS
    )


def controller_status(
    runtime: RuntimeFolder, spec: DeploymentSpec, running: bool
) -> tuple[str | None, str | None]:
    """What ``status`` says of the controller: its ``controller`` field and, when it should
    run beside replicas that run but does not, the error to report."""
    if not needs_controller(spec):
        return None, None
    pid = controller_pid(runtime)
    if pid is not None:
        return f"running (pid {pid})", None
    if not running:
        return None, None
    return "not running", (
        "the experiment controller is not running, so no guardrail is judged "
        "and no canary step taken; `modelhub sync-deployments` starts it again"
    )


# -- managing the process (from a backend) ---------------------------------------------------------
def controller_pid(runtime: RuntimeFolder) -> int | None:
    """The pid of the deployment's running controller, or ``None``."""
    return runtime.lock_holder(runtime.controller_lock)


def start(hub: Path, name: str) -> int | None:
    """Start the deployment's controller unless one runs; the pid of the one that runs."""
    runtime = RuntimeFolder(hub, name)
    pid = controller_pid(runtime)
    if pid is not None:
        return pid
    proc = detached.spawn(__name__, hub, runtime)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:  # until it holds its lock (or exited: one ran already)
        pid = controller_pid(runtime)
        if pid is not None or proc.poll() is not None:
            return pid
        time.sleep(0.02)
    return None


def ensure(hub: Path, spec: DeploymentSpec) -> None:
    """Start the controller ``spec``'s experiment needs, unless it needs none or one runs
    (what a target's ``apply`` calls once its replicas serve ``spec``).

    Raises:
        BackendError: it did not start (the experiment would run without guardrails).
    """
    if needs_controller(spec) and start(hub, spec.name) is None:
        raise BackendError(
            f"The experiment controller of deployment {spec.name} did not start: its "
            f"{spec.traffic.kind if spec.traffic else ''} runs without guardrails.",
            hint=f"See `modelhub logs {spec.name}`; `modelhub sync-deployments` starts it.",
        )


def resume(hub: Path, spec: DeploymentSpec, serving: Callable[[], bool]) -> bool:
    """Start the controller again if ``spec`` needs one, none runs (it died, or this machine
    was off) and the deployment still ``serving()`` (else ``apply`` starts both); ``True`` if
    it did (a target's ``resume``, for ``sync-deployments``)."""
    if not needs_controller(spec) or controller_pid(RuntimeFolder(hub, spec.name)) is not None:
        return False
    if not serving():
        return False
    ensure(hub, spec)
    return True


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
    detached.reap(pid)
    return True


# -- what a target tells the process ---------------------------------------------------------------
class ScrapeSource(abc.ABC):
    """How the controller of one target finds and reads the replicas of a deployment."""

    #: what answers for the target, for the message when it stops answering
    what = "the target"

    @abc.abstractmethod
    def targets(self, spec: DeploymentSpec) -> list[str]:
        """The ready replicas that apply ``spec`` (whatever ``fetch`` takes)."""

    @abc.abstractmethod
    def fetch(self, target: str) -> str:
        """One replica's Prometheus text.

        Raises:
            OSError: it did not answer (it counts as no sample this round).
        """

    @abc.abstractmethod
    def running(self, name: str) -> bool:
        """Whether anything of deployment ``name`` is left on the target (raises when the
        target does not answer)."""


def load_source(target: str, registry: ModelRegistry, name: str) -> ScrapeSource | None:
    """The ``ScrapeSource`` of ``target`` for deployment ``name``, or ``None`` (no controller
    process there)."""
    where = SOURCES.get(target)
    if where is None:
        return None
    module, _, attr = where.partition(":")
    source: ScrapeSource = getattr(importlib.import_module(module), attr)(registry, name)
    return source


# -- the process ------------------------------------------------------------------------------------
class Watch:
    """One deployment's experiment controller; see the module docstring.

    Args:
        source: the target's ``ScrapeSource`` (by default, that of the spec's target).
    """

    def __init__(self, hub: Path, name: str, source: ScrapeSource | None = None) -> None:
        self.hub = hub
        self.name = name
        self.registry = ModelRegistry(hub)
        self.store = DeploymentStore(self.registry)
        spec = self.store.get(name)
        self.target = spec.target if spec is not None else ""
        self.source = source or load_source(self.target, self.registry, name)
        self.runtime = RuntimeFolder(hub, name)
        self.stopped = threading.Event()
        self._answered = time.monotonic()
        self.controller = ExperimentController(
            name,
            read_spec=self.read_spec,
            targets=self.source.targets if self.source is not None else lambda spec: [],
            fetch=self.source.fetch if self.source is not None else None,
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
        from .experiments import Experiments
        from .service import Deployments

        return Experiments(Deployments(self.registry))

    def read_spec(self) -> DeploymentSpec | None:
        return self.store.get(self.name)

    def gone(self) -> str | None:
        """Why this controller has nothing left to do, or ``None``."""
        if not self.hub.is_dir():
            return "the hub's folder is gone"
        spec = self.store.get(self.name)
        if spec is None:
            return "the deployment is gone"
        if self.source is None:
            return f"the {spec.target} target needs no controller process"
        if spec.target != self.target:
            return f"the deployment moved to the {spec.target} target"
        if not needs_controller(spec):
            return "no split or canary runs"
        try:
            running = self.source.running(self.name)
        except Exception as exc:  # the target went away: wait a while, it may come back
            if time.monotonic() - self._answered > PATIENCE:
                return f"{self.source.what} does not answer ({exc})"
            return None
        self._answered = time.monotonic()
        if not running:
            return "nothing of the deployment runs any more"
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
        description="Watch the experiment of one deployment (guardrails, canary steps)."
    )
    parser.add_argument("--hub", required=True, help="the hub's folder")
    parser.add_argument("--name", required=True, help="the deployment's name")
    args = parser.parse_args(argv)
    return Watch(Path(args.hub).resolve(), args.name).run()


if __name__ == "__main__":
    sys.exit(main())
