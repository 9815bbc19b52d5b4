"""The contract between a model server process and whoever starts it (a deployment supervisor).

Kept here, free of any web framework, so that a supervisor can build the command line and read
the answer without importing the server itself:

- ``server_command(ref, hub, port=0, fd=3, ...)`` is the argv of
  ``python -m jupyter_modelhub.modelserver``;
- the server writes exactly one line to stdout: ``MODELHUB-READY {"port": P, "admin_port": A,
  "pid": PID, "version": "vX.Y.Z"}`` once it has loaded and self-tested the model (then stdout
  is closed, which the reader sees as EOF, and only then does it accept on its main socket), or ``MODELHUB-FAILED <reason>`` before exiting with
  ``EXIT_LOAD_FAILED`` (3: the model cannot be loaded, e.g. an integrity error) or
  ``EXIT_LISTEN_FAILED`` (4: the port is taken or ``--fd`` is not a listening socket);
- bad arguments exit with ``EXIT_USAGE`` (2); SIGTERM/SIGINT drain and exit with ``EXIT_OK``;
- with ``lifeline=FD`` (the read end of a pipe whose write end only the supervisor holds) the
  server drains and exits as on SIGTERM when that pipe reaches EOF: a supervisor that dies,
  even by ``kill -9``, leaves no replica serving on its own.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

#: the model server program: ``python -m SERVER_MODULE ...``
SERVER_MODULE = "jupyter_modelhub.modelserver"
READY = "MODELHUB-READY"
FAILED = "MODELHUB-FAILED"
#: the environment variable that gives a server the token of its admin API (``PUT
#: /admin/traffic``); a supervisor sets it for its replicas (never on a command line)
ADMIN_TOKEN_ENV = "MODELHUB_ADMIN_TOKEN"
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_LOAD_FAILED = 3
EXIT_LISTEN_FAILED = 4

#: the options of ``server_command`` (and of the command line, with ``-`` for ``_``)
OPTIONS = (
    "host",
    "port",
    "fd",
    "admin_port",
    "deployment",
    "variant",
    "log_dir",
    "runtime",
    "max_batch_size",
    "max_wait_ms",
    "model_thread",
    "sample_rate",
    "log_rows_per_second",
    "log_flush_rows",
    "log_flush_seconds",
    "max_body_mb",
    "drain_seconds",
    "log_level",
    "lifeline",
    "traffic",
)


@dataclass(frozen=True)
class Ready:
    """What a server announced on its ``MODELHUB-READY`` line."""

    port: int
    admin_port: int | None
    pid: int
    version: str


def server_command(
    ref: str,
    hub: str | os.PathLike[str],
    *,
    python: str | None = None,
    **options: Any,
) -> list[str]:
    """The argv that starts a model server for ``ref`` in ``hub``.

    ``options`` are those of ``OPTIONS`` (``port=0``, ``fd=3``, ``admin_port=0``,
    ``log_dir=PATH``, ``model_thread=True``...); ``None`` and ``False`` leave an option out.
    An ``fd`` must also be passed to the child (``subprocess.Popen(..., pass_fds=[fd])``).

    Raises:
        ValueError: an unknown option.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"Unknown model server options: {', '.join(unknown)}")
    argv = [python or sys.executable, "-m", SERVER_MODULE, ref, "--hub", str(hub)]
    for name in OPTIONS:
        value = options.get(name)
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def parse_status_line(line: str) -> Ready | str | None:
    """A ``Ready`` for a READY line, the reason (a str) for a FAILED line, else None."""
    line = line.rstrip("\r\n")
    if line.startswith(READY + " "):
        data = json.loads(line[len(READY) + 1 :])
        return Ready(
            port=int(data["port"]),
            admin_port=None if data.get("admin_port") is None else int(data["admin_port"]),
            pid=int(data["pid"]),
            version=str(data["version"]),
        )
    if line.startswith(FAILED + " "):
        return line[len(FAILED) + 1 :]
    return None
