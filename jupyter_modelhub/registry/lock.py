"""The hub lock: one writer at a time, across kernels, the Jupyter server and terminals.

An OS-level file lock (``flock``) is released by the kernel when its holder dies, so a crashed
writer never leaves the hub locked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import Conflict


@contextmanager
def hub_lock(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the hub's write lock for the duration of the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), thread_local=False)
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise Conflict(
            f"The hub is busy: another writer has held its lock ({path}) for {timeout:.0f} s.",
            hint="Wait for it to finish, or stop the process that holds it.",
        ) from exc
    try:
        yield
    finally:
        lock.release()
