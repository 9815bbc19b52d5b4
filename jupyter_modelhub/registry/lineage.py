"""Lineage of a version: data hash, code commit, notebook, and the Python environment it needs."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..models import Lineage
from .dvcstore import DvcStore, file_md5

FRAMEWORK_PACKAGES = {
    "sklearn": ["scikit-learn", "numpy", "scipy", "joblib"],
    "joblib": ["joblib", "numpy"],
    "onnx": ["onnx", "onnxruntime", "numpy"],
    "files": [],
}


def data_hash(data: Any) -> tuple[str | None, str | None]:
    """The md5 of training data: a path's DVC record or bytes, or an in-memory table's values.

    Returns ``(hash, path)``; the path is None for in-memory data.
    """
    if data is None:
        return None, None
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser().resolve()
        dvc_file = path.with_name(path.name + ".dvc")
        if dvc_file.exists():
            return DvcStore.parse_dvc_file(dvc_file.read_text()).md5, str(path)
        if path.is_file():
            return file_md5(path), str(path)
        if path.is_dir():
            digest = hashlib.md5(usedforsecurity=False)
            for sub in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(f"{sub.relative_to(path).as_posix()}:{file_md5(sub)}\n".encode())
            return digest.hexdigest(), str(path)
        return None, str(path)
    import numpy as np

    digest = hashlib.md5(usedforsecurity=False)
    if type(data).__name__ == "DataFrame":
        import pandas as pd

        digest.update(",".join(map(str, data.columns)).encode())
        digest.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    else:
        array = np.ascontiguousarray(np.asarray(data))
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest(), None


def code_commit(where: Path) -> tuple[str | None, str | None, bool | None]:
    """``(commit, repository root, dirty)`` of the git repository containing ``where``."""
    try:
        root = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True
        )
        if root.returncode != 0:
            return None, None, None
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, ValueError):
        return None, None, None
    return (head or None), root.stdout.strip(), bool(dirty)


@lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def environment(flavor: str, model_type: str) -> dict[str, str]:
    """Versions of the packages needed to rebuild a model of this flavor and type."""
    wanted = list(FRAMEWORK_PACKAGES.get(flavor, []))
    top_module = model_type.split(".", 1)[0]
    if top_module and top_module not in ("builtins", "folder", "file", "onnx"):
        wanted.extend(_module_distributions().get(top_module, []))
    versions = {}
    for name in dict.fromkeys(wanted):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def collect(
    *,
    flavor: str,
    model_type: str,
    data: Any = None,
    notebook: str | None = None,
    code_dir: Path | None = None,
) -> Lineage:
    """Gather the lineage of a registration made from ``code_dir`` (the current directory)."""
    digest, data_path = data_hash(data)
    commit, repo, dirty = code_commit(code_dir or Path.cwd())
    notebook = notebook or os.environ.get("JPY_SESSION_NAME") or None
    return Lineage(
        data_hash=digest,
        data_path=data_path,
        code_commit=commit,
        code_repo=repo,
        code_dirty=dirty,
        notebook=notebook,
        python=platform.python_version(),
        environment=environment(flavor, model_type),
    )
