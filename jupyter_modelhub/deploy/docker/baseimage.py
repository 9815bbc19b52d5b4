"""The base image of model images, made from Debian's packages (no Docker Hub needed).

``build_base_image()`` (``modelhub build-base``) runs, as root::

    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,git \\
        bookworm ROOTFS MIRROR
    chroot ROOTFS python3 -m venv /opt/modelhub/venv
    chroot ROOTFS /opt/modelhub/venv/bin/pip install --no-index --require-hashes ...

installing the model server's own packages (numpy, tornado, pandas, pyarrow… at the versions
installed on this host) from wheels downloaded on the host, then imports the folder as one
layer with ``docker import``. git is there because the model server reads the model's
version from the small hub baked into each model image. Images built on it add only what a
model needs on top.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import BackendError, InvalidArgument
from . import wheelhouse

DEFAULT_BASE_IMAGE = "modelhub-base:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "git")
VENV = "/opt/modelhub/venv"
#: the lock of what the base image's venv holds, kept in the image
BASE_LOCK = "/opt/modelhub/base.lock"
ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}


def build_base_image(
    client: Any,
    tag: str = DEFAULT_BASE_IMAGE,
    *,
    mirror: str | None = None,
    say: Callable[[str], None] = print,
) -> str:
    """Create the base image ``tag`` from Debian packages and host wheels; returns its id.

    Args:
        client: a ``docker.DockerClient``.
        mirror: the Debian mirror (default: ``$MODELHUB_DEBIAN_MIRROR`` or deb.debian.org).

    Raises:
        InvalidArgument: not root, or debootstrap is missing.
        BackendError: debootstrap, pip or the import failed (their own message).
    """
    if os.geteuid() != 0:
        raise InvalidArgument(
            "Building the base image needs root (debootstrap and chroot).",
            hint=f"Run `sudo modelhub build-base`, or pass --base-image with an image that has "
            f"python3.11, git and a venv at {VENV}.",
        )
    if shutil.which("debootstrap") is None:
        raise InvalidArgument(
            "debootstrap is not installed.", hint="apt-get install -y debootstrap"
        )
    mirror = mirror or os.environ.get("MODELHUB_DEBIAN_MIRROR") or DEFAULT_MIRROR
    requirements = wheelhouse.host_pins(wheelhouse.SERVER_PACKAGES)
    house = wheelhouse.download(requirements, say=say)
    locked = wheelhouse.resolve(requirements, house)
    with tempfile.TemporaryDirectory(prefix="modelhub-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"debootstrap {SUITE} ({', '.join(DEBIAN_PACKAGES)}) from {mirror}")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                SUITE,
                str(rootfs),
                mirror,
            ],
            "debootstrap",
        )
        wheels = rootfs / "tmp" / "wheels"
        wheels.mkdir(parents=True)
        for wheel in locked:
            shutil.copy2(wheel.path, wheels / wheel.path.name)
        lock = wheelhouse.lock_text(locked, "the model server's packages (modelhub build-base)")
        (wheels / "requirements.lock").write_text(lock)
        say(f"Installing {len(locked)} wheels into {VENV}")
        _run(["chroot", str(rootfs), "/usr/bin/python3", "-m", "venv", VENV], "python3 -m venv")
        _run(
            [
                "chroot", str(rootfs), f"{VENV}/bin/pip", "install", "--quiet",
                "--disable-pip-version-check", "--no-index", "--no-deps", "--require-hashes",
                "--find-links", "/tmp/wheels", "-r", "/tmp/wheels/requirements.lock",
            ],
            "pip install",
        )  # fmt: skip
        shutil.rmtree(wheels)
        (rootfs / BASE_LOCK.lstrip("/")).write_text(lock)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        archive = Path(tmp) / "rootfs.tar"
        say("docker import")
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."], "tar")
        repository, _, name = tag.rpartition(":") if ":" in tag else (tag, "", "latest")
        changes = [f"ENV {key}={value}" for key, value in ENV.items()]
        changes.append(f'LABEL modelhub.base="{SUITE}"')
        client.api.import_image_from_file(
            str(archive), repository=repository, tag=name, changes=changes
        )
    image = client.images.get(tag)
    say(f"Built {tag} ({image.short_id}, {image.attrs['Size'] / 1e6:.0f} MB)")
    return str(image.id)


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        raise BackendError(
            f"{what} failed while building the base image: "
            + (" | ".join(lines[-3:]) if lines else f"exit {proc.returncode}")
        )
