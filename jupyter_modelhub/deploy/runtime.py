"""The runtime folder of a local deployment: ``<hub>/.modelhub/runtime/deployments/NAME/``.

Never in git. It holds::

    desired.json      the spec the supervisor was last asked to apply, with a request number
    state.json        what the supervisor reports: replicas, versions, the last update's result
    supervisor.lock   held (flock) by the running supervisor for its whole life
    controller.lock   held by a docker/kubernetes deployment's experiment controller (``deploy.watch``)
    logs/deployment.log   the supervisor's and its replicas' output
    predictions/      the replicas' prediction logs (``--log-dir``)

Every JSON file is written atomically (a temporary file renamed over it), so a reader never
sees half a file. Whether a supervisor (or a controller) runs is whether its lock is held: the
kernel releases an ``flock`` when its holder dies, so a crashed one never looks alive, and a
reused pid never looks like one.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from ..registry.dvcstore import atomic_write
from ..registry.registry import RUNTIME_DIR

LOG_NAME = "deployment.log"


class RuntimeFolder:
    """Paths and files of one deployment's runtime folder."""

    def __init__(self, hub_root: Path, name: str) -> None:
        self.name = name
        self.path = Path(hub_root) / RUNTIME_DIR / "runtime" / "deployments" / name
        self.desired_file = self.path / "desired.json"
        self.state_file = self.path / "state.json"
        self.lock_file = self.path / "supervisor.lock"
        self.controller_lock = self.path / "controller.lock"
        self.operation_lock = self.path / "operation.lock"
        self.logs = self.path / "logs"
        self.log_file = self.logs / LOG_NAME
        self.predictions = self.path / "predictions"

    def create(self) -> None:
        for folder in (self.path, self.logs, self.predictions):
            folder.mkdir(parents=True, exist_ok=True)

    # -- JSON files ----------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any]:
        return _read_json(self.state_file)

    def write_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.state_file, json.dumps(state, indent=1))

    def read_desired(self) -> dict[str, Any]:
        return _read_json(self.desired_file)

    def write_desired(self, desired: dict[str, Any]) -> None:
        self.create()
        atomic_write(self.desired_file, json.dumps(desired, indent=1))

    # -- the supervisor's (and a controller's) lock ---------------------------------------------
    def acquire_supervisor_lock(self) -> int | None:
        """Take the supervisor lock (non-blocking) and write our pid in it: the lock's file
        descriptor, or ``None`` if another process holds it."""
        return self.acquire_lock(self.lock_file)

    def supervisor_pid(self, wait: float = 2.0) -> int | None:
        """The pid of the running supervisor, or ``None`` if none runs."""
        return self.lock_holder(self.lock_file, wait)

    def supervisor_running(self) -> bool:
        """Whether a live process holds the supervisor lock."""
        return self.lock_held(self.lock_file)

    def acquire_lock(self, lock_file: Path) -> int | None:
        """Take ``lock_file`` (non-blocking) and write our pid in it: the lock's file
        descriptor, or ``None`` if another process holds it."""
        self.create()
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def lock_holder(self, lock_file: Path, wait: float = 2.0) -> int | None:
        """The pid of the live process holding ``lock_file``, or ``None`` if none does."""
        deadline = time.monotonic() + wait
        while self.lock_held(lock_file):
            text = lock_file.read_text().strip()
            if text.isdigit():
                return int(text)
            if time.monotonic() > deadline:  # the lock is held but no pid was ever written
                return None
            time.sleep(0.01)  # it has just taken the lock and is writing its pid
        return None

    @staticmethod
    def lock_held(lock_file: Path) -> bool:
        """Whether a live process holds ``lock_file``."""
        if not lock_file.exists():
            return False
        fd = os.open(lock_file, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing the descriptor drops a lock we may have taken
        return False

    # -- logs ----------------------------------------------------------------------------------
    def tail(self, lines: int) -> list[str]:
        """The last ``lines`` lines of the deployment's log (fewer if it is shorter)."""
        if lines <= 0 or not self.log_file.is_file():
            return []
        with open(self.log_file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            block = 64 * 1024
            data = b""
            while end > 0 and data.count(b"\n") <= lines:
                start = max(0, end - block)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
        text = data.decode("utf-8", "replace").splitlines()
        return text[-lines:]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
