"""Copying a pod's log chunks here (``deploy.kubernetes.podlogs``), without a cluster: the
archive is what the pod's ``tar | base64`` would send, made by this machine's own tar."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from jupyter_modelhub.deploy.kubernetes.manifests import PREDICTIONS_DIR
from jupyter_modelhub.deploy.kubernetes.podlogs import (
    TAR_COMMAND,
    fetch_archive,
    local_name,
    unpack_chunks,
)


def run_here(folder: Path) -> Any:
    """A ``PodExec`` that runs the command on this machine, the pod's log folder being
    ``folder``."""

    def pod_exec(core: Any, namespace: str, pod: str, command: list[str]) -> str:
        assert command[:2] == ["sh", "-c"]
        script = command[2].replace(PREDICTIONS_DIR, str(folder))
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
        return done.stdout

    return pod_exec


def test_the_chunks_of_a_pod_land_here_once(tmp_path: Path) -> None:
    pod = tmp_path / "pod"
    (pod / "feedback").mkdir(parents=True)
    (pod / "20261122T100000-7-abc123-000001.parquet").write_bytes(b"PAR1 predictions")
    (pod / "feedback" / "20261122T100001-7-def456-000001.parquet").write_bytes(b"PAR1 outcomes")
    (pod / ".20261122T100002-7-abc123-000002.parquet.tmp").write_bytes(b"half written")
    here = tmp_path / "here"

    archive = fetch_archive(run_here(pod), None, "ml", "fraud-abc-0")
    assert unpack_chunks(archive, here, "fraud-abc-0") == 2
    copied = sorted(p.relative_to(here).as_posix() for p in here.rglob("*") if p.is_file())
    assert copied == [
        "20261122T100000-7-abc123-000001.fraud-abc-0.parquet",
        "feedback/20261122T100001-7-def456-000001.fraud-abc-0.parquet",
    ]
    assert (here / copied[0]).read_bytes() == b"PAR1 predictions"
    # again: nothing new, nothing written
    assert unpack_chunks(archive, here, "fraud-abc-0") == 0
    (pod / "20261122T100003-7-abc123-000003.parquet").write_bytes(b"PAR1 more")
    assert unpack_chunks(fetch_archive(run_here(pod), None, "ml", "p"), here, "fraud-abc-0") == 1


def _member(tar: tarfile.TarFile, name: str, data: bytes = b"x", **kind: Any) -> None:
    info = tarfile.TarInfo(name)
    for key, value in kind.items():
        setattr(info, key, value)
    if info.isreg():
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def test_members_that_are_not_chunks_of_the_log_folder_are_skipped(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _member(tar, "../escaped.parquet")
        _member(tar, "./feedback/../../escaped2.parquet")
        _member(tar, "/tmp/absolute.parquet")
        _member(tar, "./link.parquet", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        _member(tar, "./hard.parquet", type=tarfile.LNKTYPE, linkname="../../etc/passwd")
        _member(tar, "./sub/deep/nested.parquet")
        _member(tar, "./.hidden.parquet")
        _member(tar, "./notes.txt")
        _member(tar, "./feedback", type=tarfile.DIRTYPE)
        _member(tar, "./good.parquet", b"PAR1")
    here = tmp_path / "deployment" / "predictions"
    assert unpack_chunks(buffer.getvalue(), here, "pod-1") == 1
    everything = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert everything == [
        "deployment",
        "deployment/predictions",
        "deployment/predictions/good.pod-1.parquet",
    ]


def test_a_long_pod_name_is_hashed_to_keep_a_valid_file_name() -> None:
    chunk = "20261122T100000-7-abc123-000001.parquet"
    assert local_name(chunk, "p") == "20261122T100000-7-abc123-000001.p.parquet"
    long = local_name(chunk, "x" * 253)
    assert len(long) <= 255 and long.startswith("20261122T100000") and long.endswith(".parquet")
    assert TAR_COMMAND[-1].startswith(f"tar cf - -C {PREDICTIONS_DIR} .")
