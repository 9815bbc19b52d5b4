"""The build context of a model image: what ``modelhub build`` sends to the Docker engine.

::

    Dockerfile
    requirements.lock   exactly what the model needs on top of the base image, hash-pinned
    wheels/             those wheels (downloaded on the host: no network inside the build)
    app/                this package as a wheel
    hub/                a hub of one model: git metadata of the served versions and their
                        DVC objects (the weights), nothing else from the source hub

Layers, from first to last: the base image; the model's packages (changes when the model's
framework versions change); this package (changes with the code); the model (``hub/``, the
last layer: a new version of the same model rebuilds only this one). The DVC objects are
copied after their md5 was checked here, and the model server checks them again when it
loads them. Credentials never enter the context: the small hub has no DVC remote, no
``config.local`` and no git remote.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidArgument
from ...models import ModelVersion, StoredObject
from ...registry.gitrepo import GitRepo
from ...registry.registry import ModelRegistry
from . import wheelhouse

#: where things live inside a model image
IMAGE_HUB = "/opt/modelhub/hub"
IMAGE_PACKAGES = "/opt/modelhub/packages"
IMAGE_APP = "/opt/modelhub/app"
#: the prediction log folder inside a container (a bind mount of the runtime folder)
IMAGE_LOG_DIR = "/var/lib/modelhub/predictions"
ENTRYPOINT_MODULE = "jupyter_modelhub.deploy.docker.entrypoint"

Say = Callable[[str], None]


@dataclass(frozen=True)
class BuildContext:
    """A written build context and what it holds."""

    path: Path
    model: str
    versions: tuple[str, ...]
    requirements: tuple[str, ...]

    @property
    def dockerfile(self) -> str:
        return (self.path / "Dockerfile").read_text()


def image_repository(model: str) -> str:
    return f"modelhub/{model}"


def default_tag(model: str, versions: Sequence[str]) -> str:
    """``modelhub/fraud:v0.0.2``; with challengers ``modelhub/fraud:v0.0.2-v0.0.3``."""
    return f"{image_repository(model)}:{'-'.join(versions)}"


def model_requirements(versions: Sequence[ModelVersion]) -> list[str]:
    """Pinned requirements of the served versions' flavors: the versions recorded in their
    lineage (what they were trained with), else those installed here."""
    pins: dict[str, str] = {}
    for version in versions:
        environment = {
            wheelhouse.canonical(k): v for k, v in version.meta.lineage.environment.items()
        }
        flavor = version.meta.flavor
        use_onnx = flavor == "onnx" or "onnx" in version.meta.files
        names = list(wheelhouse.FLAVOR_PACKAGES.get(flavor, ()))
        if use_onnx:
            names += wheelhouse.FLAVOR_PACKAGES["onnx"]
        for name in names:
            key = wheelhouse.canonical(name)
            recorded = environment.get(key)
            pin = f"{name}=={recorded}" if recorded else wheelhouse.host_pins([name])[0]
            if key in pins and pins[key] != pin:
                raise InvalidArgument(
                    f"The versions {', '.join(v.ref for v in versions)} need different "
                    f"versions of {name} ({pins[key]}, {pin}): one image cannot serve them.",
                    hint="Register them with the same framework versions.",
                )
            pins[key] = pin
    return sorted(pins.values(), key=str.lower)


def write_context(
    registry: ModelRegistry,
    versions: Sequence[ModelVersion],
    dest: Path,
    *,
    base_image: str,
    say: Say | None = None,
) -> BuildContext:
    """Write the build context serving ``versions`` (one model; the first is the champion)
    into the empty folder ``dest``.

    Raises:
        InvalidArgument: versions of different models, or conflicting framework versions.
        NotFound / IntegrityError: an artifact is missing or corrupt in the hub.
        BackendError: the wheels could not be downloaded.
    """
    if not versions:
        raise InvalidArgument("Nothing to build: no model version given.")
    model = versions[0].name
    if any(v.name != model for v in versions):
        raise InvalidArgument("One image serves versions of one model only.")
    dest.mkdir(parents=True, exist_ok=True)
    requirements = model_requirements(versions)
    _write_packages(dest, requirements, say)
    wheelhouse.package_wheel(dest / "app")
    write_model_hub(registry, versions, dest / "hub")
    (dest / "Dockerfile").write_text(
        dockerfile(base_image, versions[0].ref, has_packages=bool(_lock_lines(dest)))
    )
    (dest / ".dockerignore").write_text("**/__pycache__\n")
    return BuildContext(dest, model, tuple(v.version for v in versions), tuple(requirements))


def _lock_lines(dest: Path) -> list[str]:
    lock = dest / "requirements.lock"
    return [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]


def _write_packages(dest: Path, requirements: list[str], say: Say | None) -> None:
    """``requirements.lock`` and ``wheels/``: the model's packages (and their dependencies)
    that the base image's venv does not already have at the same version."""
    server = wheelhouse.host_pins(wheelhouse.SERVER_PACKAGES)
    (dest / "wheels").mkdir(exist_ok=True)
    locked: list[wheelhouse.LockedWheel] = []
    if requirements:
        house = wheelhouse.wheelhouse_dir()
        try:
            both = wheelhouse.resolve([*server, *requirements], house)
        except Exception:
            wheelhouse.download([*server, *requirements], house, say=say)
            both = wheelhouse.resolve([*server, *requirements], house)
        in_base = {(w.name, w.version) for w in wheelhouse.resolve(server, house)}
        locked = [w for w in both if (w.name, w.version) not in in_base]
        for wheel in locked:
            shutil.copy2(wheel.path, dest / "wheels" / wheel.path.name)
    header = "What the model needs on top of the base image (modelhub build); " + (
        "requested: " + " ".join(requirements) if requirements else "nothing"
    )
    (dest / "requirements.lock").write_text(wheelhouse.lock_text(locked, header))


def dockerfile(base_image: str, ref: str, *, has_packages: bool) -> str:
    """The Dockerfile: packages and the app in a first stage (so no wheel stays in the
    image), the model's hub last."""
    pip = "pip install --quiet --disable-pip-version-check --no-index --no-deps"
    install = (
        f"RUN {pip} --require-hashes --find-links /tmp/wheels --target {IMAGE_PACKAGES} \\\n    -r /tmp/wheels/requirements.lock"
        if has_packages
        else f"RUN mkdir -p {IMAGE_PACKAGES}"
    )
    env = {
        "PYTHONPATH": f"{IMAGE_APP}:{IMAGE_PACKAGES}",
        "MODELHUB_HUB": IMAGE_HUB,
        "DVC_NO_ANALYTICS": "1",
        "HOME": "/tmp",
        # the hub's files belong to root; the server may run as the deploying user
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
    }
    env_line = " \\\n    ".join(f"{k}={json.dumps(v)}" for k, v in env.items())
    python = ["python", "-m", ENTRYPOINT_MODULE]
    return f"""\
# Generated by jupyter-modelhub (modelhub build {ref}). Layers: base, packages, app, model.
FROM {base_image} AS packages
COPY requirements.lock wheels/ /tmp/wheels/
{install}
COPY app/ /tmp/app/
RUN {pip} --target {IMAGE_APP} /tmp/app/*.whl

FROM {base_image}
ENV {env_line}
COPY --from=packages {IMAGE_PACKAGES} {IMAGE_PACKAGES}
COPY --from=packages {IMAGE_APP} {IMAGE_APP}
HEALTHCHECK --interval=5s --timeout=3s --start-period=120s --retries=3 \\
    CMD {json.dumps([*python, "--healthcheck"])}
ENTRYPOINT {json.dumps(python)}
# the model: its versions' metadata and weights, the only layer a new version changes
COPY hub/ {IMAGE_HUB}/
CMD {json.dumps([ref])}
"""


# -- a hub of one model ---------------------------------------------------------------------------
_SAFE_TAG = re.compile(r"^[a-z0-9_-]+@v\d+\.\d+\.\d+$")


def write_model_hub(registry: ModelRegistry, versions: Sequence[ModelVersion], dest: Path) -> None:
    """A hub holding only ``versions``: each one's ``meta.yaml`` committed and tagged with
    its original tag name and message, and its DVC objects (checked against their md5)."""
    git = GitRepo.init(dest)
    (dest / ".dvc").mkdir()
    (dest / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (dest / ".gitignore").write_text("/.modelhub/\n/.dvc/cache/\n")
    source = registry.git
    meta_path = f"{registry.model_dir(versions[0].name)}/meta.yaml"
    for version in sorted(versions, key=lambda v: (v.meta.created, v.version)):
        if not _SAFE_TAG.match(version.tag):
            raise InvalidArgument(f"Unexpected tag {version.tag!r}.")
        target = dest / meta_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.show_file(version.commit, meta_path))
        commit = git.commit_all(f"{version.ref} (copied by modelhub build)")
        message = source.run("tag", "-l", "--format=%(contents)", version.tag).strip()
        timestamp = source.run("tag", "-l", "--format=%(taggerdate:unix)", version.tag).strip()
        git.create_tag(version.tag, commit, message or version.ref, int(timestamp or 0) or None)
        objects: list[StoredObject] = [version.meta.artifact]
        if version.meta.reference is not None:
            objects.append(version.meta.reference.stored)
        if not all(registry.dvc.has_object(obj) for obj in objects):
            registry.pull(version.ref)  # from the hub's DVC remote, with its own credentials
        for obj in objects:
            _copy_object(registry, obj, dest)


def _copy_object(registry: ModelRegistry, obj: StoredObject, dest: Path) -> None:
    """Copy a DVC object (a file, or a ``.dir`` tree and its files) into ``dest``'s cache,
    verified against its md5 first."""
    store = registry.dvc
    registry_cache = store.cache_dir
    wanted = [obj.md5]
    if obj.md5.endswith(".dir"):
        wanted += [md5 for _, md5 in store.tree_entries(obj)]
    store.verified_files(obj)  # raises IntegrityError/NotFound before anything is copied
    for md5 in wanted:
        src = registry_cache / md5[:2] / md5[2:]
        target = dest / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
