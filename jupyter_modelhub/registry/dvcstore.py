"""The one adapter to DVC: content-addressed storage that stock DVC reads and writes.

Hot paths (storing and verifying artifacts) write DVC's own on-disk format directly, hashing each
byte once while copying it into the cache: ``.dvc/cache/files/md5/AB/CDEF…`` objects, ``.dir``
tree objects (DVC's exact JSON, so its md5 matches what ``dvc status`` computes) and ``.dvc``
files. Everything else (``init``, remotes, ``push``, ``pull``) goes through ``dvc.repo.Repo``,
opened per operation, imported lazily because importing DVC costs about a second.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from ..errors import BackendError, Conflict, IntegrityError, NotFound
from ..models import StoredObject

CHUNK = 4 * 1024 * 1024
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

ProgressCallback = Callable[[int], None]


def _yaml_load(text: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def _yaml_dump(data: Any) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)


class DvcStore:
    """DVC storage of one hub: its cache, its ``.dvc`` files and its ``dvc.yaml`` artifacts."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache_dir: Path | None = None

    # -- set-up -------------------------------------------------------------------------------
    @staticmethod
    def init(root: Path) -> None:
        """Initialise DVC in a git repository (``dvc init``) with a hub-friendly cache setting."""
        from dvc.repo import Repo

        dvc_logger = logging.getLogger("dvc")
        level = dvc_logger.level
        dvc_logger.setLevel(logging.WARNING)  # DVC logs "Initialized DVC repository." at INFO
        try:
            with Repo.init(str(root)) as repo, repo.config.edit() as conf:
                conf["core"]["analytics"] = False
                conf["cache"]["type"] = "reflink,hardlink,copy"
        finally:
            dvc_logger.setLevel(level)

    def add_remote(self, url: str, name: str = "storage") -> None:
        """Add a DVC remote and make it the default one."""
        from dvc.repo import Repo

        if "://" not in url:
            path = Path(url).expanduser()
            path.mkdir(parents=True, exist_ok=True)
            url = str(path.resolve())
        with Repo(str(self.root)) as repo, repo.config.edit() as conf:
            conf["remote"][name] = {"url": url}
            conf["core"]["remote"] = name

    def remotes(self) -> dict[str, str]:
        """Remote names mapped to URLs, read from ``.dvc/config`` (no DVC import)."""
        result = {}
        for section, values in self._config().items():
            if section.startswith("remote "):
                result[section.split(" ", 1)[1].strip('"')] = values.get("url", "")
        return result

    def _config(self) -> dict[str, dict[str, str]]:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read([self.root / ".dvc" / "config", self.root / ".dvc" / "config.local"])
        # DVC (configobj) writes sections as ['remote "name"']: drop the outer quotes.
        return {
            s.strip("'"): {k: v.strip("\"'") for k, v in parser.items(s)} for s in parser.sections()
        }

    @property
    def cache_dir(self) -> Path:
        """Where DVC keeps md5-addressed objects (honours ``cache.dir`` in the DVC config)."""
        if self._cache_dir is None:
            custom = self._config().get("cache", {}).get("dir")
            base = (self.root / ".dvc" / custom) if custom else (self.root / ".dvc" / "cache")
            self._cache_dir = base.resolve() / "files" / "md5"
        return self._cache_dir

    def object_path(self, md5: str) -> Path:
        """Where the object ``md5`` (``….dir`` for a tree) lives in the cache."""
        return self.cache_dir / md5[:2] / md5[2:]

    # -- storing ------------------------------------------------------------------------------
    def store_file(self, src: Path, progress: ProgressCallback | None = None) -> tuple[str, int]:
        """Put a file into the cache; return (md5, size).

        The bytes are hashed once; only when the cache lacks them are they copied in (by the
        kernel, ``copy_file_range``), so identical bytes cost neither storage nor writes.
        """
        before = os.stat(src)
        md5 = file_md5(src, progress)
        if not self.object_path(md5).exists():
            tmp_dir = self.cache_dir.parent.parent / "tmp"
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="modelhub-")
            os.close(fd)
            try:
                shutil.copyfile(src, tmp_name)
                self._commit_object(Path(tmp_name), md5)
            finally:
                if os.path.exists(tmp_name):
                    os.unlink(tmp_name)
        after = os.stat(src)
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise Conflict(
                f"{src} changed while it was being registered.",
                hint="Register it again once nothing is writing to it.",
            )
        return md5, before.st_size

    def store_bytes(self, data: bytes, suffix: str = "") -> str:
        """Store bytes as an object (``suffix`` ``.dir`` for a tree); return the object's id."""
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest() + suffix
        if not self.object_path(md5).exists():
            tmp_dir = self.cache_dir.parent.parent / "tmp"
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="modelhub-")
            with os.fdopen(fd, "wb") as writer:
                writer.write(data)
            self._commit_object(Path(tmp_name), md5)
        return md5

    def _commit_object(self, tmp: Path, md5: str) -> None:
        """Move a fully written temporary file to its address (atomic; idempotent)."""
        dest = self.object_path(md5)
        if dest.exists():
            tmp.unlink()
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)

    def store_folder(
        self,
        name: str,
        from_disk: dict[str, Path],
        in_memory: dict[str, bytes],
        progress: ProgressCallback | None = None,
    ) -> StoredObject:
        """Store files (by folder-relative path) and the DVC ``.dir`` object listing them."""
        entries = []
        total = 0
        for relpath, source in from_disk.items():
            md5, size = self.store_file(source, progress)
            entries.append({"md5": md5, "relpath": relpath})
            total += size
        for relpath, data in in_memory.items():
            entries.append({"md5": self.store_bytes(data), "relpath": relpath})
            total += len(data)
            if progress:
                progress(len(data))
        entries.sort(key=lambda e: e["relpath"])
        tree_id = self.store_bytes(json.dumps(entries, sort_keys=True).encode("utf-8"), ".dir")
        return StoredObject(path=name, md5=tree_id, size=total, nfiles=len(entries))

    # -- .dvc files and the workspace ----------------------------------------------------------
    @staticmethod
    def dvc_file_text(obj: StoredObject) -> str:
        """The ``.dvc`` file DVC itself would write for ``obj``."""
        out: dict[str, Any] = {"md5": obj.md5, "size": obj.size}
        if obj.md5.endswith(".dir"):
            out["nfiles"] = obj.nfiles
        out["hash"] = "md5"
        out["path"] = obj.path
        return _yaml_dump({"outs": [out]})

    @staticmethod
    def parse_dvc_file(text: str) -> StoredObject:
        data = _yaml_load(text) or {}
        out = (data.get("outs") or [{}])[0]
        if "md5" not in out:
            raise IntegrityError("A .dvc file has no md5 record.")
        return StoredObject(
            path=str(out.get("path", "")),
            md5=str(out["md5"]),
            size=int(out.get("size", 0)),
            nfiles=int(out.get("nfiles", 1)),
        )

    def tree_entries(self, obj: StoredObject) -> list[tuple[str, str]]:
        """``(relpath, md5)`` of every file of a stored object, read from (and checked in) cache."""
        if not obj.md5.endswith(".dir"):
            return [(obj.path, obj.md5)]
        path = self._require(obj.md5, obj)
        data = path.read_bytes()
        if hashlib.md5(data, usedforsecurity=False).hexdigest() + ".dir" != obj.md5:
            raise IntegrityError(
                f"The file list of {obj.path} ({obj.md5}) is corrupt in the cache."
            )
        return [(e["relpath"], e["md5"]) for e in json.loads(data)]

    def _require(self, md5: str, obj: StoredObject) -> Path:
        path = self.object_path(md5)
        if not path.exists():
            raise NotFound(
                f"The artifact {obj.path} ({obj.md5}) is not in this hub's local cache.",
                hint="Fetch it with `modelhub pull REF` (needs a DVC remote).",
            )
        return path

    def materialize(
        self, obj: StoredObject, dest: Path, verify: bool = True, replace: bool = True
    ) -> None:
        """Write ``obj``'s files at ``dest`` (hard links into the cache where possible).

        The files are assembled in a private temporary folder and moved into place at once, so
        several processes may materialise the same object concurrently. With ``replace=False``
        an existing ``dest`` (another process was first) is kept as it is.
        """
        tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            entries = self.tree_entries(obj)
            is_dir = obj.md5.endswith(".dir")
            for relpath, md5 in entries:
                source = self._require(md5, obj)
                if verify:
                    self.verify_object(md5, obj)
                target = tmp / relpath if is_dir else tmp
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
            if replace:
                _remove(dest)
            try:
                os.replace(tmp, dest)
            except OSError:
                if replace or not dest.exists():
                    raise
        finally:
            _remove(tmp)

    def verify_object(self, md5: str, obj: StoredObject) -> Path:
        """Re-hash one cached object; raise ``IntegrityError`` when the bytes changed."""
        path = self._require(md5, obj)
        if file_md5(path) != md5:
            raise IntegrityError(
                f"The artifact {obj.path} is corrupt: a file's bytes no longer match its md5 "
                f"{md5}. It was not loaded.",
                hint="Run `modelhub doctor` and pull it again from the remote.",
            )
        return path

    def verified_files(self, obj: StoredObject) -> dict[str, Path]:
        """Check every file of ``obj`` against its md5 and map relpath to its cache path."""
        return {rel: self.verify_object(md5, obj) for rel, md5 in self.tree_entries(obj)}

    def has_object(self, obj: StoredObject) -> bool:
        try:
            return all(self.object_path(m).exists() for _, m in self.tree_entries(obj))
        except NotFound:
            return False

    # -- dvc.yaml artifacts --------------------------------------------------------------------
    def ensure_artifact(self, name: str, path: str, desc: str, labels: list[str]) -> bool:
        """Declare ``name`` in ``dvc.yaml``'s ``artifacts:`` (type model); True if it changed."""
        dvc_yaml = self.root / "dvc.yaml"
        data = _yaml_load(dvc_yaml.read_text()) if dvc_yaml.exists() else None
        data = data or {}
        artifacts = data.setdefault("artifacts", {}) or {}
        data["artifacts"] = artifacts
        previous = artifacts.get(name) or {}
        entry: dict[str, Any] = {"path": path, "type": "model"}
        summary = desc.strip().splitlines()[0][:200] if desc.strip() else previous.get("desc")
        if summary:
            entry["desc"] = summary  # the model's description: the latest one given
        labels = list(labels) or previous.get("labels") or []
        if labels:
            entry["labels"] = labels
        if artifacts.get(name) == entry:
            return False
        artifacts[name] = entry
        atomic_write(dvc_yaml, _yaml_dump(data))
        return True

    # -- remotes --------------------------------------------------------------------------------
    def transfer_objects(
        self, verb: str, objects: list[StoredObject], remote: str | None = None
    ) -> int:
        """Push or pull exactly these objects (folders with their files) with DVC's transfer.

        DVC draws its own progress bars. Returns how many files were transferred.
        """
        if not self.remotes():
            raise NotFound(
                "This hub has no DVC remote.",
                hint="Add one with `modelhub init PATH --remote URL` or `dvc remote add -d NAME URL`.",
            )
        from dvc.exceptions import DvcException
        from dvc_data.hashfile.hash_info import HashInfo

        def send(ids: list[str], repo: Any) -> int:
            method = repo.cloud.push if verb == "push" else repo.cloud.pull
            result = method([HashInfo("md5", i) for i in ids], remote=remote)
            if result.failed:
                raise BackendError(
                    f"dvc {verb} could not transfer {len(result.failed)} file(s)",
                    hint="Check the remote's URL and credentials (`dvc remote list`).",
                )
            return len(result.transferred)

        # DVC's cloud transfer does not expand folder (.dir) objects: list their files
        # ourselves (after fetching the lists, when pulling).
        trees = [o.md5 for o in objects if o.md5.endswith(".dir")]
        try:
            with _progress_bars(), self.open_repo() as repo:
                count = 0
                if verb == "pull":
                    count += send([t for t in trees if not self.object_path(t).exists()], repo)
                files = [m for o in objects for _, m in self.tree_entries(o)]
                count += send(files + (trees if verb == "push" else []), repo)
        except DvcException as exc:
            raise BackendError(f"dvc {verb} failed: {exc}") from exc
        return count

    @contextmanager
    def open_repo(self) -> Iterator[Any]:
        from dvc.repo import Repo

        with Repo(str(self.root)) as repo:
            yield repo


@contextmanager
def _progress_bars() -> Iterator[None]:
    """Let DVC draw its transfer progress bars on stderr, in notebooks too.

    DVC hides them unless its logger is at INFO and stderr is a terminal (a notebook's is not).
    """
    dvc_logger = logging.getLogger("dvc")
    level, ignore = dvc_logger.level, os.environ.get("DVC_IGNORE_ISATTY")
    dvc_logger.setLevel(logging.INFO)
    os.environ["DVC_IGNORE_ISATTY"] = "true"
    try:
        yield
    finally:
        dvc_logger.setLevel(level)
        if ignore is None:
            os.environ.pop("DVC_IGNORE_ISATTY", None)
        else:
            os.environ["DVC_IGNORE_ISATTY"] = ignore


def file_md5(path: Path, progress: ProgressCallback | None = None) -> str:
    """DVC's md5 of a file's bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb", buffering=0) as reader:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while n := reader.readinto(buffer):
            digest.update(view[:n])
            if progress:
                progress(n)
    return digest.hexdigest()


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)  # read-only files go too: unlinking needs only the folder writable


def atomic_write(path: Path, text: str) -> None:
    """Write a text file so that readers see the old or the new content, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_path(path: Path) -> None:
    """Delete a file or folder, including DVC's read-only hard links."""
    _remove(path)
