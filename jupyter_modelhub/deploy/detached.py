"""The detached processes of a deployment: the local supervisor and the experiment controller.

Each runs ``python -m MODULE --hub HUB --name NAME`` in a session of its own, so that it
outlives the kernel (or the Jupyter server) that started it, with its output appended to the
deployment's log. The ``Popen`` objects of the ones this process started are kept and reaped
once they exit, so that Python does not warn about them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from .runtime import RuntimeFolder

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_SPAWNED: list[subprocess.Popen[bytes]] = []


def spawn(module: str, hub: Path, runtime: RuntimeFolder) -> subprocess.Popen[bytes]:
    """Start ``python -m module --hub hub --name runtime.name`` detached, writing to the log."""
    runtime.create()
    reap()
    env = dict(os.environ)
    if Path(_PACKAGE_PARENT).name not in ("site-packages", "dist-packages"):
        # running from a source tree: the process (and its children) import this same copy
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
    with open(runtime.log_file, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--hub", str(hub), "--name", runtime.name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=hub,
            env=env,
            start_new_session=True,
        )
    _SPAWNED.append(proc)
    return proc


def reap(stopped: int | None = None) -> None:
    """Collect the exit status of the processes this process started that have exited (and
    of ``stopped``, which is exiting)."""
    for proc in list(_SPAWNED):
        if proc.pid == stopped:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.poll() is not None:
            _SPAWNED.remove(proc)
