"""Copy the pods' prediction and outcome logs to this machine, where the readers are.

A pod's model server writes its prediction log (``serving.predlog``) and its outcomes
(``serving.outcomes``, in ``feedback/``) as Parquet chunks into an ``emptyDir`` at
``PREDICTIONS_DIR``. The A/B and shadow reports, ``quality`` and drift read the deployment's
runtime folder here, so before they run the hub copies the chunks in, as ``kubectl cp`` does:
it runs ``tar`` in the server container through the API server's exec (the user needs
``create`` on ``pods/exec``) and unpacks the archive here.

The pod image needs ``sh``, ``tar`` and ``base64`` (Debian-based images, such as the one
``modelhub image`` builds, have them; a distroless image does not): the client's exec stream
decodes stdout as text, so the archive travels base64-encoded.

Chunk names are unique and a chunk appears atomically (written under a temporary ``.*.tmp``
name, then renamed), so a chunk already here is never copied again. Copies keep the flat layout
the readers glob (``*.parquet`` in the folder and in ``feedback/``), with the pod's name added
to the chunk's (``STAMP-PID-TOKEN-SEQ.POD.parquet``): names stay unique across pods and still
sort by time. Only regular files named like chunks, directly in the log folder or in
``feedback/``, are taken from an archive; anything else (a link, an absolute path, ``..``, a
temporary file) is skipped.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...serving.outcomes import FEEDBACK_FOLDER
from .manifests import CONTAINER, PREDICTIONS_DIR

log = logging.getLogger(__name__)

EXEC_TIMEOUT = 60.0  # seconds for one pod's archive
#: the log folder as a tar archive, base64-encoded (the exec stream is read as text)
TAR_COMMAND = ["sh", "-c", f"tar cf - -C {PREDICTIONS_DIR} . | base64"]
#: a finished chunk's name (temporary files start with a dot)
CHUNK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.parquet$")
MAX_NAME = 255

#: (CoreV1Api, namespace, pod name, command) -> what the command wrote on stdout
PodExec = Callable[[Any, str, str, list[str]], str]


def exec_in_pod(core: Any, namespace: str, pod: str, command: list[str]) -> str:
    """Run ``command`` in ``pod``'s server container through the API server's exec (as
    ``kubectl exec``); its stdout.

    Raises:
        RuntimeError: the command failed (with its stderr), or did not end in time.
        kubernetes.client.ApiException: the API refused (403: no ``create`` on ``pods/exec``).
    """
    from kubernetes.stream import stream

    answer = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=CONTAINER,
        command=command,
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
        _request_timeout=EXEC_TIMEOUT,
    )
    try:
        answer.run_forever(timeout=EXEC_TIMEOUT)
        if answer.is_open():
            raise RuntimeError(f"`{' '.join(command)}` did not end in {EXEC_TIMEOUT:.0f} s")
        out = answer.read_stdout() or ""
        err = answer.read_stderr() or ""
        code = answer.returncode
    finally:
        answer.close()
    if code:
        raise RuntimeError(f"`{' '.join(command)}` exited with {code}: {err.strip()}")
    return str(out)


def fetch_archive(pod_exec: PodExec, core: Any, namespace: str, pod: str) -> bytes:
    """``pod``'s log folder as a tar archive (``TAR_COMMAND`` through ``pod_exec``)."""
    return base64.b64decode(pod_exec(core, namespace, pod, TAR_COMMAND))


def local_name(chunk: str, pod: str) -> str:
    """The name here of chunk ``chunk`` of ``pod``: the pod's name before ``.parquet``
    (hashed if the whole would be too long for a file name)."""
    stem = chunk.removesuffix(".parquet")
    name = f"{stem}.{pod}.parquet"
    if len(name) > MAX_NAME:
        name = f"{stem}.{hashlib.sha256(pod.encode()).hexdigest()[:16]}.parquet"
    return name


def unpack_chunks(archive: bytes, predictions: Path, pod: str) -> int:
    """Write the chunks of ``archive`` that are not here yet into ``predictions`` (and its
    ``feedback/``); how many were written. Members that are not chunks are skipped.

    Raises:
        tarfile.TarError: the archive is not a tar archive at all.
    """
    written = 0
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar:
            folder, chunk = _place(member.name)
            if chunk is None:
                continue
            if not member.isreg():
                log.warning("Skipped %s of pod %s: not a regular file", member.name, pod)
                continue
            target = predictions / folder / local_name(chunk, pod)
            if target.exists():
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")  # readers skip dot files
            tmp.write_bytes(source.read())
            os.replace(tmp, target)
            written += 1
    return written


def _place(name: str) -> tuple[str, str | None]:
    """Where archive member ``name`` goes: ``("", CHUNK)`` or ``("feedback", CHUNK)``, or
    ``("", None)`` for anything else (absolute paths and ``..`` included)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        log.warning("Skipped archive member %r: outside the log folder", name)
        return "", None
    if len(parts) == 1 and CHUNK.match(parts[0]):
        return "", parts[0]
    if len(parts) == 2 and parts[0] == FEEDBACK_FOLDER and CHUNK.match(parts[1]):
        return FEEDBACK_FOLDER, parts[1]
    return "", None
