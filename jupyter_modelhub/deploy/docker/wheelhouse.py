"""Wheels for images, downloaded on the host: ``pip`` inside ``docker build`` never touches
the network.

A build asks for pinned requirements (``scikit-learn==1.9.1``); ``pip download`` fetches them
and their dependencies, for the image's Python and platform (not the host's), into one
wheelhouse shared by every build (``$MODELHUB_WHEELHOUSE``, else
``~/.cache/jupyter-modelhub/wheelhouse``). The resolved set is written as a lock file, one
``name==version --hash=sha256:…`` line per wheel, which ``pip install --require-hashes``
inside the build checks byte for byte.

This package itself goes into images as a wheel made here from the installed (or source)
copy of its Python files: no Node build, and the same bytes each time for the same files, so
its image layer is reused until the code changes.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ...errors import BackendError

WHEELHOUSE_ENV = "MODELHUB_WHEELHOUSE"
#: the Python of the base image (Debian bookworm's python3)
IMAGE_PYTHON = "3.11"
#: what the model server imports whatever the model (the base image's venv has them)
SERVER_PACKAGES = (
    "numpy",
    "tornado",
    "prometheus-client",
    "PyYAML",
    "filelock",
    "pandas",
    "pyarrow",
    "orjson",
)
#: what a flavor needs on top of the server's packages (onnx models run on onnxruntime alone)
FLAVOR_PACKAGES = {
    "sklearn": ("scikit-learn", "scipy", "joblib", "threadpoolctl"),
    "joblib": ("joblib",),
    "onnx": ("onnxruntime",),
}
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")

Say = Callable[[str], None]


def wheelhouse_dir() -> Path:
    """The shared folder of downloaded wheels."""
    given = os.environ.get(WHEELHOUSE_ENV)
    if given:
        return Path(given).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "jupyter-modelhub" / "wheelhouse"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def host_pins(names: Iterable[str]) -> list[str]:
    """``name==version`` for each package installed here (the versions the server was tested
    with), else the bare name."""
    out = []
    for name in names:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


@dataclass(frozen=True)
class LockedWheel:
    name: str
    version: str
    sha256: str
    path: Path

    def line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def _platforms() -> list[str]:
    machine = platform.machine() or "x86_64"
    # bookworm has glibc 2.36; older manylinux wheels run on it too
    return [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)] + [
        f"manylinux2014_{machine}",
        f"linux_{machine}",
    ]


def download(requirements: list[str], dest: Path | None = None, say: Say | None = None) -> Path:
    """``pip download`` ``requirements`` and their dependencies as wheels for the image's
    Python into ``dest`` (default: the shared wheelhouse); returns the folder.

    Raises:
        BackendError: pip's own message (no network, no such version…).
    """
    dest = dest or wheelhouse_dir()
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
    argv += ["--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation", "cp"]
    argv += ["--abi", "cp" + IMAGE_PYTHON.replace(".", "")]
    for name in _platforms():
        argv += ["--platform", name]
    argv += ["--find-links", str(dest), *requirements]
    if say:
        say(f"Fetching wheels for {' '.join(requirements)}")
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise BackendError(
            "pip could not download the wheels an image needs: "
            + (lines[-1] if lines else f"exit {proc.returncode}"),
            hint=f"Check that PyPI (or your pip index) is reachable; wheels go to {dest}.",
        )
    return dest


def resolve(requirements: list[str], wheelhouse: Path) -> list[LockedWheel]:
    """The wheels of the wheelhouse that install ``requirements`` and their dependencies,
    resolved by pip (``--dry-run --report``), with their hashes."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-index"]
        argv += ["--ignore-installed", "--only-binary=:all:", "--find-links", str(wheelhouse)]
        argv += ["--python-version", IMAGE_PYTHON, "--implementation", "cp", "--target", tmp]
        argv += ["--abi", "cp" + IMAGE_PYTHON.replace(".", "")]
        for name in _platforms():
            argv += ["--platform", name]
        argv += ["--report", str(report), *requirements]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            raise BackendError(
                "pip could not resolve the image's requirements from the wheelhouse: "
                + (lines[-1] if lines else f"exit {proc.returncode}")
            )
        installs = json.loads(report.read_text())["install"]
    out = []
    for item in installs:
        url = item["download_info"]["url"]
        path = Path(url.removeprefix("file://"))
        meta = item["metadata"]
        out.append(LockedWheel(canonical(meta["name"]), meta["version"], _sha256(path), path))
    return sorted(out, key=lambda w: w.name)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lock_text(wheels: Iterable[LockedWheel], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    return "\n".join([*lines, *(w.line() for w in wheels)]) + "\n"


# -- this package as a wheel --------------------------------------------------------------------
PACKAGE = "jupyter_modelhub"
_SKIP_DIRS = {"__pycache__", "labextension"}


def package_wheel(dest: Path) -> Path:
    """A wheel of this package's Python files (no labextension, no dependencies declared:
    the lock says what is installed), copied to ``dest``. It is made once per process, from
    the files as they were then: every image this process builds gets the same bytes, and so
    shares the layer (the same files always give the same bytes)."""
    built = _package_wheel()
    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(built, dest / built.name))


@functools.lru_cache(maxsize=1)
def _package_wheel() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="modelhub-wheel-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return _write_package_wheel(folder)


def _write_package_wheel(dest: Path) -> Path:
    try:
        __version__ = metadata.version("jupyter-modelhub")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        __version__ = "0.0.0.dev0"
    root = Path(__file__).resolve().parents[2]
    version = re.sub(r"[^0-9A-Za-z.+]", ".", __version__) or "0.0.0"
    dist = f"jupyter_modelhub-{version}"
    path = dest / f"{dist}-py3-none-any.whl"
    records: list[str] = []

    def add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
        info = zipfile.ZipInfo(arcname, _ZIP_DATE)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        records.append(f"{arcname},sha256={digest},{len(data)}")

    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix in (".py", ".json", ".yaml", ".yml", ".typed")
            and not _SKIP_DIRS & set(p.relative_to(root).parts)
        )
        for file in files:
            add(zf, f"{PACKAGE}/{file.relative_to(root).as_posix()}", file.read_bytes())
        info_dir = f"{dist}.dist-info"
        add(
            zf,
            f"{info_dir}/METADATA",
            f"Metadata-Version: 2.1\nName: jupyter-modelhub\nVersion: {version}\n".encode(),
        )
        add(
            zf,
            f"{info_dir}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: jupyter-modelhub\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        )
        records.append(f"{info_dir}/RECORD,,")
        info = zipfile.ZipInfo(f"{info_dir}/RECORD", _ZIP_DATE)
        info.external_attr = 0o644 << 16
        zf.writestr(info, "\n".join(records) + "\n")
    return path
