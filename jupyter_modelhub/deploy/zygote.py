"""A pre-warmed fork server for replicas: ``python -m jupyter_modelhub.deploy.zygote``.

Starting a model server process costs its imports (about 0.3 s for the server, 1 s or more
for scikit-learn on a small machine) before it even reads the model. The supervisor therefore
starts one *zygote* per deployment: a single-threaded process that imports the model server
and the runtime of the version being deployed once (by loading that version as a dry run and
dropping it), then forks a replica whenever the supervisor asks. N replicas cost about one
import, and a crashed replica is back in the time it takes to load its model.

The protocol, over a ``SOCK_SEQPACKET`` socket pair (one JSON message per packet):

- supervisor -> zygote ``{"spawn": ARGS}`` with three descriptors (the listening socket, the
  write ends of the replica's stdout and stderr pipes): the zygote forks; the child makes them
  its ``--fd`` socket and its fds 1 and 2 and runs ``python -m jupyter_modelhub.modelserver
  ARGS`` in-process, with the same READY/FAILED lines and exit codes. Answer: ``{"pid": N}``
  or ``{"error": REASON}`` (then the supervisor starts that replica the ordinary way);
- supervisor -> zygote ``{"warm": {"hub": ..., "ref": ..., "runtime": ...}}``: import what
  serving that version needs (after an update to another version);
- zygote -> supervisor ``{"exit": PID, "code": C}`` when a child ends (``C`` as
  ``Popen.returncode``: negative for a signal), and ``{"warmed": SECONDS, ...}`` after a warm-up.

Forking is only safe from a single-threaded process: the zygote counts its threads before each
fork and refuses if there is more than one. Libraries that start threads when imported are
told not to through the environment the supervisor gives it (``OPENBLAS_NUM_THREADS=1``,
``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``, and no jemalloc background thread for pyarrow),
unless the user set those variables; forked replicas inherit these settings (one BLAS thread
per replica: scale with replicas). ONNX Runtime starts a thread when imported, so for ONNX
versions the zygote imports the model server only and each replica imports onnxruntime itself.

The zygote dies with its supervisor (``PR_SET_PDEATHSIG``, and the end of its control socket),
stopping its children; each child gets ``PR_SET_PDEATHSIG`` SIGTERM towards the zygote.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib
import json
import os
import queue
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ..serving import contract

MAX_MESSAGE = 256 * 1024
SPAWN_FDS = 3  # listening socket, stdout, stderr
STOP_GRACE = 30.0
#: thread settings the zygote's environment gets unless the user set them
SINGLE_THREADED_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}
_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when the thread that forked it exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def thread_count() -> int:
    """The threads of this process, native ones included (from /proc where there is one)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def supported() -> bool:
    """Whether this platform can run a zygote (fork, descriptor passing, Linux /proc)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
    )


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


# == the zygote process =========================================================================
class _ZygoteServer:
    def __init__(self, control: socket.socket, name: str) -> None:
        self.control = control
        self.name = name
        self.children: set[int] = set()
        self.stopping = False
        self.wake: tuple[int, int] = (-1, -1)

    def log(self, line: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        sys.stderr.write(f"{stamp} [zygote pid {os.getpid()}] {line}\n")
        sys.stderr.flush()

    def warm(self, hub: str, ref: str, runtime: str) -> None:
        """Import what serving ``ref`` needs: the model server, and for a version served by
        scikit-learn, its estimator's modules (a dry-run load, then dropped)."""
        started = time.monotonic()
        note = ""
        try:
            from ..registry.registry import ModelRegistry
            from ..serving.loading import load_served_model

            registry = ModelRegistry(Path(hub))
            meta = registry.show(ref).meta
            onnx = meta.files.get("onnx") is not None or meta.flavor == "onnx"
            if runtime == "sklearn" or (runtime == "auto" and not onnx):
                load_served_model(registry, ref, "sklearn")
                note = "scikit-learn"
            else:
                note = "onnx: onnxruntime is left to each replica"
            importlib.import_module(contract.SERVER_MODULE)
        except Exception as exc:  # the replicas will report the problem in their own words
            note = f"partly ({type(exc).__name__}: {exc})"
        gc.collect()
        gc.freeze()  # what is loaded now is shared with the children: keep the GC off it
        seconds = time.monotonic() - started
        threads = thread_count()
        self.log(f"warmed up for {ref} in {seconds:.2f} s ({note}; {threads} thread(s))")
        _send(self.control, {"warmed": round(seconds, 3), "ref": ref, "threads": threads})

    def run(self) -> int:
        selector = selectors.DefaultSelector()
        wake_r, wake_w = self.wake = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(wake_r, selectors.EVENT_READ, "wake")
        while not self.stopping:
            for key, _ in selector.select(timeout=1.0):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                elif not self._handle_control():
                    self.stopping = True  # the supervisor is gone (or closed us)
            self._reap()
        self._stop_children()
        return 0

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _handle_control(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE, SPAWN_FDS)
        except (ConnectionError, OSError):
            return False
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        message = json.loads(data)
        if "warm" in message:
            warm = message["warm"]
            self.warm(warm["hub"], warm["ref"], warm.get("runtime", "auto"))
        elif "spawn" in message:
            try:
                self._spawn(list(message["spawn"]), fds)
            finally:
                for fd in fds:
                    os.close(fd)
        return True

    def _spawn(self, args: list[str], fds: list[int]) -> None:
        if len(fds) != SPAWN_FDS:
            _send(self.control, {"error": f"expected {SPAWN_FDS} descriptors, got {len(fds)}"})
            return
        threads = thread_count()
        if threads > 1:
            _send(self.control, {"error": f"the zygote runs {threads} threads: forking is unsafe"})
            return
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the replica
            os._exit(_child(args, fds, parent, self.control, self.wake))
        self.children.add(pid)
        _send(self.control, {"pid": pid})

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            with contextlib.suppress(OSError):
                _send(self.control, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def _stop_children(self) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.02)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap()


def _child(
    args: list[str], fds: list[int], parent: int, control: socket.socket, private: tuple[int, ...]
) -> int:
    """In the forked replica: take the descriptors, then run the model server's main."""
    code = 1
    try:
        control.close()
        signal.set_wakeup_fd(-1)
        for fd in private:  # the zygote's own descriptors
            os.close(fd)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        listen_fd, out_fd, err_fd = fds
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(devnull)
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:  # the zygote died before we asked to follow it
            return 1
        # What ``python -m jupyter_modelhub.modelserver ARGS`` would do, minus the imports.
        sys.argv = [contract.SERVER_MODULE, *_with_option(args, "--fd", str(listen_fd))]
        runpy.run_module(contract.SERVER_MODULE, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def _with_option(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with ``flag``'s value replaced (or the flag added)."""
    args = list(args)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fork model server replicas on request.")
    parser.add_argument("--control", type=int, required=True, help="the control socket's fd")
    parser.add_argument("--hub", required=True, help="the hub's folder")
    parser.add_argument("--deployment", required=True, help="the deployment's name")
    parser.add_argument("--ref", required=True, help="the version to warm up for")
    parser.add_argument("--runtime", default="auto", help="the runtime the spec asks for")
    args = parser.parse_args(argv)
    set_parent_death_signal(signal.SIGTERM)
    control = socket.socket(fileno=args.control)
    server = _ZygoteServer(control, args.deployment)
    if os.getppid() == 1:
        return 1  # the supervisor died before we could follow it
    server.warm(args.hub, args.ref, args.runtime)
    return server.run()


# == the supervisor's side ======================================================================
class ForkedReplica:
    """A replica forked by the zygote, with the part of ``subprocess.Popen`` the supervisor
    uses (``pid``, ``stdout``, ``stderr``, ``wait``, ``poll``, ``send_signal``, ``kill``)."""

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int) -> None:
        self.pid = pid
        # the read ends of the pipes the child writes to (closed with these objects)
        self.stdout: IO[str] | None = open(stdout_fd, errors="replace", buffering=1)  # noqa: SIM115
        self.stderr: IO[str] | None = open(stderr_fd, errors="replace", buffering=1)  # noqa: SIM115
        self.returncode: int | None = None
        self._done = threading.Event()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise TimeoutError(f"replica {self.pid} still runs")
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ZygoteClient:
    """The supervisor's handle on its zygote: start it, ask it to fork, learn of exits.

    Args:
        argv: the zygote's command line without ``--control`` (added here).
        env: its environment.
        log: where to report (the supervisor's log).
        pass_fds: descriptors the zygote and its children inherit under the same numbers
            (the lifeline's read end).
    """

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        log: Callable[[str], None],
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self._log = log
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.proc = subprocess.Popen(
            [*argv, "--control", str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(), *pass_fds),
            env=env,
        )
        theirs.close()
        self._replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._pending: tuple[int, int] | None = None
        self._children: dict[int, ForkedReplica] = {}
        self._lock = threading.Lock()
        self.alive = True
        self.warmed = threading.Event()
        threading.Thread(target=self._read, daemon=True, name="zygote-reader").start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def warm(self, hub: str, ref: str, runtime: str) -> None:
        with contextlib.suppress(OSError):
            _send(self.sock, {"warm": {"hub": hub, "ref": ref, "runtime": runtime}})

    def spawn(self, args: list[str], listen_fd: int, timeout: float) -> ForkedReplica:
        """Fork a replica running the model server with ``args``; raises ``OSError`` if the
        zygote cannot (it is gone, refuses, or does not answer within ``timeout``)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        replica = None
        try:
            with self._lock:
                if not self.alive:
                    raise OSError("the zygote is gone")
                self._pending = (out_r, err_r)
                _send(self.sock, {"spawn": args}, [listen_fd, out_w, err_w])
                try:
                    reply = self._replies.get(timeout=timeout)
                except queue.Empty:
                    self.alive = False  # a late answer must not meet closed pipes: retire it
                    self.proc.kill()
                    raise OSError(f"the zygote did not answer within {timeout:.0f} s") from None
                finally:
                    self._pending = None
            replica = reply.get("replica")
            if replica is None:
                raise OSError(reply.get("error") or "the zygote is gone")
            assert isinstance(replica, ForkedReplica)
            return replica
        finally:
            os.close(out_w)
            os.close(err_w)
            if replica is None:
                os.close(out_r)
                os.close(err_r)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            if "exit" in message:
                child = self._children.pop(int(message["exit"]), None)
                if child is not None:
                    child._exited(int(message["code"]))
            elif "warmed" in message:
                self.warmed.set()
            elif "pid" in message and self._pending is not None:
                # registered here, before any exit message of it can be read
                replica = ForkedReplica(int(message["pid"]), *self._pending)
                self._children[replica.pid] = replica
                self._replies.put({"replica": replica})
            else:
                self._replies.put(message)
        self.alive = False
        self._replies.put({"error": "the zygote is gone"})
        self.warmed.set()
        if self._children:
            self._log(f"zygote (pid {self.pid}) is gone; its {len(self._children)} replicas stop")
        self._orphaned()

    def _orphaned(self) -> None:
        """The zygote died: its children got SIGTERM (their parent-death signal); report each
        one's exit once it is gone (they are not our children: no exit code to collect)."""
        deadline = time.monotonic() + STOP_GRACE
        while self._children:
            for pid, child in list(self._children.items()):
                if not _pid_alive(pid):
                    self._children.pop(pid)._exited(-signal.SIGTERM)
                elif time.monotonic() > deadline:
                    child.kill()
            time.sleep(0.05)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the zygote (after its replicas were stopped)."""
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        try:
            self.proc.wait(timeout=timeout)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


if __name__ == "__main__":
    sys.exit(main())
