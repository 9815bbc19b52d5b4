"""The supervisor of one local deployment: ``python -m jupyter_modelhub.deploy.supervisor``.

Started detached (its own session) by ``LocalBackend``, so it outlives the kernel, the
Jupyter server or the terminal that deployed. It:

- binds the deployment's listening socket once and hands it to every replica (``--fd``), so
  replicas come and go while the socket stays open: no connection is ever refused;
- starts replicas of the model server and waits for each one's ``MODELHUB-READY`` line (a
  replica only accepts on the shared socket after it, so a version that fails to load never
  receives a request);
- starts replicas by forking them from a pre-warmed zygote (``zygote.py``) where it can, so
  that N replicas and restarts cost about one import; else as new processes;
- restarts a replica that dies, with exponential backoff, and kills and restarts one that is
  alive but does not answer its liveness probes (``probes.py``);
- holds the write end of a *lifeline* pipe whose read end every replica watches: if the
  supervisor dies, even by ``kill -9``, its replicas drain and exit by themselves;
- on SIGHUP reloads ``desired.json`` and rolls to it: one new replica, wait until ready, stop
  one old one (SIGTERM: it finishes its requests), repeat. If a new replica fails, the update
  fails with its reason and the old version keeps serving;
- while an experiment runs, checks its guardrails and moves canaries along their steps
  (``controller.py``), through the same ``Experiments`` verbs a user calls;
- on SIGTERM stops every replica and exits.

It reports in ``state.json`` (atomic writes) and writes its own and its replicas' output,
line by line, to the deployment's log.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import queue
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Protocol

from ..serving import contract
from . import zygote
from .controller import INTERVAL_ENV, ExperimentController, admin_url, interval_from_env
from .probes import ProbeSettings, probe_live
from .runtime import RuntimeFolder
from .spec import DeploymentSpec

SERVER_COMMAND_ENV = "MODELHUB_MODELSERVER_COMMAND"
ZYGOTE_ENV = "MODELHUB_ZYGOTE"  # "0" starts every replica as a new process
ZYGOTE_MAX_STARTS = 3  # zygotes one supervisor starts before it gives up on forking
SPAWN_TIMEOUT = 120.0  # seconds the zygote may take to warm up and fork
READY_TIMEOUT = 120.0  # seconds a replica may take to load and self-test its model
STOP_GRACE = 30.0  # seconds a replica may take to finish its requests after SIGTERM
BACKOFF_MAX = 30.0
CONTROLLER_INTERVAL_ENV = INTERVAL_ENV  # seconds between experiment checks
STABLE_AFTER = 30.0  # a replica that served this long resets its slot's backoff


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def replica_argv(
    spec: DeploymentSpec, hub: Path, fd: int, log_dir: Path, lifeline: int | None = None
) -> list[str]:
    """The command line of one replica serving ``spec`` on the inherited socket ``fd``,
    watching the ``lifeline`` pipe.

    ``$MODELHUB_MODELSERVER_COMMAND`` replaces ``python -m jupyter_modelhub.modelserver``
    (for wrappers such as profilers).
    """
    argv = contract.server_command(
        spec.version_ref,
        hub,
        host=spec.host,
        port=spec.port,
        deployment=spec.name,
        fd=fd,
        admin_port=0,
        log_dir=log_dir,
        lifeline=lifeline,
        traffic=spec.traffic_json(),
        **spec.server,
    )
    custom = os.environ.get(SERVER_COMMAND_ENV)
    return [*shlex.split(custom), *argv[3:]] if custom else argv


def push_policy(admin_port: int, policy: str | None, token: str) -> str | None:
    """PUT a traffic policy (JSON, or None) to a replica's admin API; None, or the problem."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{admin_port}/admin/traffic",
        data=(policy or "null").encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
        return None
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}: {error.read()[:300].decode(errors='replace')}"
    except OSError as exc:
        return str(exc)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket that child processes inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ReplicaProcess(Protocol):
    """What the supervisor uses of a replica process: a ``subprocess.Popen`` or a
    ``zygote.ForkedReplica``."""

    pid: int
    stdout: IO[str] | None
    stderr: IO[str] | None

    def wait(self, timeout: float | None = None) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


@dataclass
class Replica:
    """One model server process and what the supervisor knows about it."""

    slot: int
    spec: DeploymentSpec
    proc: ReplicaProcess
    started: float = field(default_factory=time.time)
    ready_deadline: float = 0.0
    state: str = "starting"  # starting | ready | stopping
    ready_at: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    stop_deadline: float | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    stderr_done: threading.Event = field(default_factory=threading.Event)
    forked: bool = False
    probe_failures: int = 0
    policy: str | None = None  # the traffic policy (JSON) the replica applies now
    probe_stop: threading.Event = field(default_factory=threading.Event)

    @property
    def key(self) -> tuple[Any, ...]:
        return self.spec.replica_key()

    @property
    def label(self) -> str:
        return f"replica {self.slot} {self.spec.version} pid {self.proc.pid}"


@dataclass
class Slot:
    """Crash bookkeeping of one replica position of one spec."""

    restarts: int = 0
    failures_in_row: int = 0
    not_before: float = 0.0
    last_error: str | None = None


class Supervisor:
    """Keeps ``target.replicas`` ready replicas of the target spec; see the module docstring."""

    def __init__(self, hub: Path, name: str, probes: ProbeSettings | None = None) -> None:
        self.hub = hub
        self.probes = probes or ProbeSettings.from_env()
        self.zygote: zygote.ZygoteClient | None = None
        self.zygote_starts = 0
        self.use_zygote = (
            zygote.supported()
            and os.environ.get(ZYGOTE_ENV, "1") != "0"
            and not os.environ.get(SERVER_COMMAND_ENV)
        )
        # Replicas (and the zygote) inherit the admin token from our environment.
        self.admin_token = secrets.token_urlsafe(24)
        os.environ[contract.ADMIN_TOKEN_ENV] = self.admin_token
        # Replicas watch the read end; only we hold the write end (never inherited).
        self.lifeline_r, self.lifeline_w = os.pipe()
        self.runtime = RuntimeFolder(hub, name)
        self.name = name
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.replicas: list[Replica] = []
        self.sockets: dict[tuple[str, int], socket.socket] = {}
        self.slots: dict[tuple[tuple[Any, ...], int], Slot] = {}
        self.serving: DeploymentSpec | None = None
        self.target: DeploymentSpec | None = None
        self.update: dict[str, Any] = {}
        self.last_error: str | None = None
        self.phase = "starting"
        self.stopping = False
        self.failed = False
        self._log_lock = threading.Lock()
        self._last_state: dict[str, Any] | None = None

    # -- logging -------------------------------------------------------------------------------
    def log(self, source: str, line: str) -> None:
        with self._log_lock:
            stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            sys.stdout.write(f"{stamp} [{source}] {line.rstrip()}\n")
            sys.stdout.flush()

    # -- main loop -----------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGHUP, lambda *_: self.events.put(("reload",)))
        signal.signal(signal.SIGTERM, lambda *_: self.events.put(("stop",)))
        signal.signal(signal.SIGINT, lambda *_: self.events.put(("stop",)))
        lock = None
        deadline = time.monotonic() + 5
        while lock is None:  # a status check may hold the lock for an instant
            lock = self.runtime.acquire_supervisor_lock()
            if lock is None:
                if time.monotonic() > deadline:
                    self.log("supervisor", "another supervisor runs this deployment; exiting")
                    return 1
                time.sleep(0.05)
        self.log("supervisor", f"started (pid {os.getpid()}; {self.probes.describe()})")
        previous = self.runtime.read_state()
        if previous.get("phase") not in (None, "stopped", "failed"):
            self.log(
                "supervisor",
                f"recovering: the previous supervisor (pid {previous.get('supervisor_pid')}) "
                "ended without stopping its deployment (killed?)",
            )
        self.reload()
        if self.target is None and not self.failed:
            self.fail_update("no readable desired state (desired.json)")
        controller = self._controller()
        threading.Thread(target=controller.run, name="experiment-controller", daemon=True).start()
        while not self.stopping and not self.failed:
            self.reconcile()
            self.write_state()
            try:
                event = self.events.get(timeout=self._next_timer())
                self.handle(event)
                while True:
                    self.handle(self.events.get_nowait())
            except queue.Empty:
                pass
            self.check_timers()
        controller.stop()
        self.shutdown()
        os.close(lock)
        return 0

    def _controller(self) -> ExperimentController:
        """The experiment controller, acting through the hub's ``Experiments`` verbs."""

        def experiments() -> Any:
            # imported when the controller acts, not at start-up (scipy.stats, DVC: ~0.6 s)
            from ..registry.registry import ModelRegistry
            from .experiments import Experiments
            from .service import Deployments

            return Experiments(Deployments(ModelRegistry(self.hub)))

        return ExperimentController(
            self.name,
            read_spec=lambda: self.serving if self.serving is self.target else None,
            targets=lambda spec: [admin_url(port) for port in self._admin_ports(spec)],
            roll_back=lambda reason: experiments().roll_back(self.name, reason),
            advance=lambda: experiments().advance(self.name),
            interval=interval_from_env(),
            say=lambda line: self.log("controller", line),
        )

    def _admin_ports(self, spec: DeploymentSpec) -> list[int]:
        """Admin ports of the ready replicas that apply ``spec``'s traffic policy."""
        key, policy = spec.replica_key(), spec.traffic_json()
        return [
            int(r.info["admin_port"])
            for r in list(self.replicas)
            if r.state == "ready"
            and r.key == key
            and r.policy == policy
            and r.info.get("admin_port")
        ]

    def _next_timer(self) -> float:
        now = time.monotonic()
        times = [r.ready_deadline for r in self.replicas if r.state == "starting"]
        times += [r.stop_deadline for r in self.replicas if r.stop_deadline]
        times += [s.not_before for s in self.slots.values() if s.not_before > now]
        return max(0.01, min([0.5, *(t - now for t in times)]))

    def handle(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "reload":
            self.reload()
        elif kind == "stop":
            self.log("supervisor", "stopping")
            self.stopping = True
        elif kind == "ready":
            self.on_ready(event[1], event[2])
        elif kind == "failed":
            event[1].error = event[2]
        elif kind == "exit":
            self.on_exit(event[1], event[2])
        elif kind == "probe":
            self.on_probe(event[1], event[2])

    # -- desired state -------------------------------------------------------------------------
    def reload(self) -> None:
        """Read ``desired.json`` and start moving to it."""
        desired = self.runtime.read_desired()
        try:
            spec = DeploymentSpec.from_dict(desired["spec"])
        except Exception as exc:  # a broken file must not kill a serving deployment
            self.log("supervisor", f"cannot read the desired state: {exc}")
            return
        request = int(desired.get("request", 0))
        self.update = {
            "request": request,
            "result": "in-progress",
            "version": spec.version,
            "error": None,
            "started": _now_iso(),
            "finished": None,
        }
        if self.serving is None and self.target is None:
            self.log("supervisor", f"deploying {spec.version_ref} x{spec.replicas}")
        else:
            self.log("supervisor", f"updating to {spec.version_ref} x{spec.replicas}")
        address = (spec.host, int(spec.port or 0))
        if address not in self.sockets:
            try:
                self.sockets[address] = listen(*address)
            except OSError as exc:
                self.fail_update(f"cannot listen on {spec.endpoint}: {exc.strerror or exc}")
                return
        if self.zygote is not None and self.zygote.alive and spec.version != self.target_version:
            self.zygote.warm(str(self.hub), spec.version_ref, spec.server.get("runtime", "auto"))
        self.target = spec
        for replica in list(self.replicas):
            if replica.state == "ready":
                self.sync_policy(replica)

    def sync_policy(self, replica: Replica) -> None:
        """Give a ready replica the target's traffic policy at once, when its variants can
        take it (a split's new weights, a canary's next step, a blue-green switch, an
        experiment's end): no restart. A replica that should keep serving but refuses is
        replaced."""
        target = self.target
        if target is None or replica.policy == target.traffic_json():
            return
        port = replica.info.get("admin_port")
        policy = target.traffic_json()
        problem = push_policy(int(port), policy, self.admin_token) if port else "no admin port"
        if problem is None:
            replica.policy = policy
            self.log(replica.label, "traffic policy applied")
        elif replica.key == target.replica_key():
            self.log(replica.label, f"cannot take the new traffic policy ({problem}); replacing")
            self.stop(replica)

    @property
    def target_version(self) -> str | None:
        return self.target.version if self.target else None

    def fail_update(self, reason: str) -> None:
        self.log("supervisor", f"update to {self.update.get('version')} failed: {reason}")
        self.update.update(result="failed", error=reason, finished=_now_iso())
        self.last_error = reason
        if self.serving is None:
            self.failed = True  # nothing ever served: give up and report
            self.phase = "failed"
        self.target = self.serving

    def finish_update(self) -> None:
        assert self.target is not None
        self.serving = self.target
        if self.update.get("result") == "in-progress":
            self.update.update(result="ok", finished=_now_iso())
            self.log("supervisor", f"serving {self.serving.version_ref} x{self.serving.replicas}")

    # -- replica events ------------------------------------------------------------------------
    def on_ready(self, replica: Replica, info: dict[str, Any]) -> None:
        if replica.state != "starting":
            return
        replica.state = "ready"
        replica.ready_at = time.monotonic()
        replica.info = info
        self.log(
            replica.label, f"ready on port {info.get('port')} (admin {info.get('admin_port')})"
        )
        self.sync_policy(replica)
        if self.probes.enabled and info.get("admin_port"):
            threading.Thread(
                target=self._probe_loop, args=(replica, int(info["admin_port"])), daemon=True
            ).start()

    def _probe_loop(self, replica: Replica, port: int) -> None:
        """Probe one replica's liveness until it leaves the ready state (its own thread)."""
        while not replica.probe_stop.wait(self.probes.interval):
            self.events.put(("probe", replica, probe_live(port, self.probes.timeout)))

    def on_probe(self, replica: Replica, problem: str | None) -> None:
        if replica.state != "ready" or replica not in self.replicas:
            return
        if problem is None:
            replica.probe_failures = 0
            return
        replica.probe_failures += 1
        if replica.probe_failures < self.probes.failures:
            return
        replica.error = f"hung: {problem} ({replica.probe_failures} probes in a row)"
        self.log(replica.label, f"{replica.error}; killing it (SIGKILL)")
        replica.probe_stop.set()
        replica.proc.kill()

    def on_exit(self, replica: Replica, code: int) -> None:
        replica.probe_stop.set()
        if replica in self.replicas:
            self.replicas.remove(replica)
        replica.stderr_done.wait(timeout=1.0)
        if replica.state == "stopping":
            self.log(replica.label, f"stopped (exit code {code})")
            return
        reason = replica.error or _exit_reason(code, replica.stderr_tail)
        self.log(replica.label, f"exited: {reason}")
        slot = self.slot(replica.spec, replica.slot)
        slot.last_error = reason
        if replica.state == "starting":
            target = self.target
            if (
                target is not None
                and target is not self.serving
                and replica.key == target.replica_key()
            ):
                self.fail_update(reason)  # the new spec does not come up: keep the old one
                return
        else:  # it served, then died: restart it, at once the first time
            slot.restarts += 1
            if replica.ready_at and time.monotonic() - replica.ready_at > STABLE_AFTER:
                slot.failures_in_row = 0
        slot.failures_in_row += 1
        delay = (
            0.0
            if slot.failures_in_row == 1
            else min(0.5 * 2 ** (slot.failures_in_row - 2), BACKOFF_MAX)
        )
        slot.not_before = time.monotonic() + delay
        self.last_error = f"replica {replica.slot}: {reason}"

    def check_timers(self) -> None:
        now = time.monotonic()
        for replica in list(self.replicas):
            if replica.state == "starting" and now > replica.ready_deadline:
                replica.error = f"not ready within {READY_TIMEOUT:.0f} s"
                replica.proc.kill()
                replica.ready_deadline = float("inf")
            if replica.stop_deadline and now > replica.stop_deadline:
                self.log(
                    replica.label, f"still running {STOP_GRACE:.0f} s after SIGTERM; killing it"
                )
                replica.proc.kill()
                replica.stop_deadline = None

    # -- the controller ------------------------------------------------------------------------
    def slot(self, spec: DeploymentSpec, index: int) -> Slot:
        return self.slots.setdefault((spec.replica_key(), index), Slot())

    def reconcile(self) -> None:
        """One step towards ``target``: start, retire or replace replicas (surge of one)."""
        target = self.target
        if target is None:
            return
        key = target.replica_key()
        live = [r for r in self.replicas if r.state != "stopping"]
        mine = [r for r in live if r.key == key]
        others = [r for r in live if r.key != key]
        for replica in others:
            if replica.state == "starting":
                self.stop(replica)  # a leftover of an abandoned update: it never served
        others_ready = [r for r in others if r.state == "ready"]
        mine.sort(key=lambda r: (r.state != "ready", r.slot))
        for replica in mine[target.replicas :]:
            self.stop(replica)
        mine = mine[: target.replicas]
        mine_ready = [r for r in mine if r.state == "ready"]
        starting = len(mine) - len(mine_ready)
        missing = target.replicas - len(mine)
        allowed = max(0, 1 - starting) if others_ready else missing  # roll one at a time
        used = {r.slot for r in mine}
        now = time.monotonic()
        for index in range(target.replicas):
            if allowed <= 0 or missing <= 0:
                break
            if index in used or self.slot(target, index).not_before > now:
                continue
            self.start(target, index)
            allowed -= 1
            missing -= 1
        surplus = len(mine_ready) + len(others_ready) - target.replicas
        for replica in sorted(others_ready, key=lambda r: r.started)[: max(0, surplus)]:
            self.stop(replica)
        if len(mine_ready) == target.replicas and not others_ready:
            if self.serving is not target:
                self.finish_update()
            self.phase = "running"
        elif self.serving is not None and self.serving is not target:
            self.phase = "updating"
        elif self.serving is None:
            self.phase = "starting"
        else:
            self.phase = "degraded"
        self._close_unused_sockets()

    def start(self, spec: DeploymentSpec, index: int) -> None:
        sock = self.sockets[(spec.host, int(spec.port or 0))]
        argv = replica_argv(
            spec, self.hub, sock.fileno(), self.runtime.predictions, self.lifeline_r
        )
        proc: ReplicaProcess | None = self._fork(spec, argv, sock.fileno())
        forked = proc is not None
        if proc is None:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                pass_fds=(sock.fileno(), self.lifeline_r),
            )
        replica = Replica(index, spec, proc, ready_deadline=time.monotonic() + READY_TIMEOUT)
        replica.forked = forked
        replica.policy = spec.traffic_json()  # what its --traffic says
        self.replicas.append(replica)
        self.log(replica.label, "starting" + (" (forked by the zygote)" if forked else ""))
        threading.Thread(target=self._read_stdout, args=(replica,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(replica,), daemon=True).start()

    def _fork(self, spec: DeploymentSpec, argv: list[str], fd: int) -> ReplicaProcess | None:
        """A replica forked by the zygote (started on first use), or ``None`` where it cannot:
        the caller then starts a new process."""
        if not self.use_zygote:
            return None
        if self.zygote is None or not self.zygote.alive:
            if self.zygote is not None:
                self.zygote.close(timeout=1.0)
                self.zygote = None
            if self.zygote_starts >= ZYGOTE_MAX_STARTS:
                self.log("supervisor", "the zygote keeps failing: starting replicas as processes")
                self.use_zygote = False
                return None
            self.zygote = self._start_zygote(spec)
        try:
            return self.zygote.spawn(argv[3:], fd, SPAWN_TIMEOUT)
        except OSError as exc:
            self.log("supervisor", f"the zygote cannot fork ({exc}): starting a process")
            if "threads" in str(exc):
                self.use_zygote = False
            return None

    def _start_zygote(self, spec: DeploymentSpec) -> zygote.ZygoteClient:
        self.zygote_starts += 1
        env = dict(os.environ)
        for key, value in zygote.SINGLE_THREADED_ENV.items():
            env.setdefault(key, value)
        client = zygote.ZygoteClient(
            [
                sys.executable,
                "-m",
                "jupyter_modelhub.deploy.zygote",
                "--hub",
                str(self.hub),
                "--deployment",
                self.name,
                "--ref",
                spec.version_ref,
                "--runtime",
                str(spec.server.get("runtime", "auto")),
            ],
            env,
            lambda line: self.log("supervisor", line),
            pass_fds=(self.lifeline_r,),
        )
        self.log("supervisor", f"zygote started (pid {client.pid})")
        return client

    def stop(self, replica: Replica) -> None:
        if replica.state == "stopping":
            return
        self.log(replica.label, "stopping (SIGTERM)")
        replica.state = "stopping"
        replica.stop_deadline = time.monotonic() + STOP_GRACE
        with contextlib.suppress(ProcessLookupError):
            replica.proc.send_signal(signal.SIGTERM)

    def _close_unused_sockets(self) -> None:
        wanted = {(s.host, int(s.port or 0)) for s in (self.target, self.serving) if s}
        wanted |= {(r.spec.host, int(r.spec.port or 0)) for r in self.replicas}
        for address in list(self.sockets):
            if address not in wanted:
                self.sockets.pop(address).close()
        keys = {s.replica_key() for s in (self.target, self.serving) if s}
        for slot_key in [k for k in self.slots if k[0] not in keys]:
            del self.slots[slot_key]

    def _read_stdout(self, replica: Replica) -> None:
        assert replica.proc.stdout is not None
        for line in replica.proc.stdout:
            try:
                status = contract.parse_status_line(line)
            except (ValueError, KeyError, TypeError):
                status = None  # a garbled READY line: the ready deadline will report it
            if isinstance(status, contract.Ready):
                self.events.put(("ready", replica, dataclasses.asdict(status)))
            elif isinstance(status, str):
                self.events.put(("failed", replica, status.strip()))
            self.log(replica.label, line)
        code = replica.proc.wait()
        self.events.put(("exit", replica, code))

    def _read_stderr(self, replica: Replica) -> None:
        stream: IO[str] | None = replica.proc.stderr
        assert stream is not None
        for line in stream:
            if line.strip():
                replica.stderr_tail.append(line.rstrip())
            self.log(replica.label, line)
        replica.stderr_done.set()

    # -- reporting and shutdown ----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        spec = self.serving or self.target
        now = time.time()
        replicas = []
        for r in sorted(self.replicas, key=lambda r: (r.spec.version, r.slot)):
            slot = self.slot(r.spec, r.slot)
            replicas.append(
                {
                    "slot": r.slot,
                    "pid": r.proc.pid,
                    "port": r.info.get("port", r.spec.port),
                    "admin_port": r.info.get("admin_port"),
                    "version": r.info.get("version") or r.spec.version,
                    "state": r.state,
                    "started": datetime.fromtimestamp(r.started, timezone.utc).isoformat(),
                    "uptime_s": round(now - r.started, 3),
                    "restarts": slot.restarts,
                    "last_error": slot.last_error,
                    "forked": r.forked,
                }
            )
        return {
            "name": self.name,
            "supervisor_pid": os.getpid(),
            "pgid": os.getpgrp(),
            "zygote_pid": self.zygote.pid if self.zygote and self.zygote.alive else None,
            "phase": self.phase,
            "endpoint": spec.endpoint if spec else None,
            "serving_version": self.serving.version if self.serving else None,
            "target_version": self.target.version if self.target else None,
            "replicas": replicas,
            "update": self.update,
            "last_error": self.last_error,
        }

    def write_state(self) -> None:
        state = self.state()
        comparable = {**state, "replicas": [{**r, "uptime_s": 0} for r in state["replicas"]]}
        if comparable != self._last_state:
            self._last_state = comparable
            self.runtime.write_state({**state, "written": _now_iso()})

    def shutdown(self) -> None:
        for replica in list(self.replicas):
            self.stop(replica)
        deadline = time.monotonic() + STOP_GRACE + 5
        while self.replicas and time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                self.check_timers()
                continue
            if event[0] == "exit":
                self.on_exit(event[1], event[2])
        for replica in self.replicas:
            replica.proc.kill()
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
        os.close(self.lifeline_w)
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        if not self.failed:
            self.phase = "stopped"
        self.replicas = []
        self.write_state()
        self.log("supervisor", "stopped" if not self.failed else "gave up")


def _exit_reason(code: int, stderr_tail: deque[str]) -> str:
    if code < 0:
        try:
            what = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            what = f"killed by signal {-code}"
    else:
        what = f"exited with code {code}"
    last = stderr_tail[-1] if stderr_tail else ""
    return f"{what}: {last}" if last else what


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Supervise the replicas of one local deployment.")
    parser.add_argument("--hub", required=True, help="the hub's folder")
    parser.add_argument("--name", required=True, help="the deployment's name")
    args = parser.parse_args(argv)
    return Supervisor(Path(args.hub).resolve(), args.name).run()


if __name__ == "__main__":
    sys.exit(main())
