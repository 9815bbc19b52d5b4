"""Building model images through the docker SDK, with the engine's progress streamed.

``build_image`` writes the build context (``context.write_context``) to a temporary folder and
sends it to the engine with the SDK's low-level API, which yields the engine's JSON lines as
they come: each ``stream`` line goes to ``progress`` (a terminal, a notebook), an ``error``
line becomes a ``BackendError`` with the engine's message. The build runs without network
(everything it installs is in the context).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import BackendError, InvalidArgument
from ...models import ModelVersion, Record
from ...registry.registry import ModelRegistry
from .baseimage import DEFAULT_BASE_IMAGE
from .context import default_tag, write_context

BASE_IMAGE_ENV = "MODELHUB_DOCKER_BASE_IMAGE"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImage(Record):
    """A model image: its tag and id, what it serves, and how the build went."""

    tag: str
    image_id: str
    model: str
    versions: tuple[str, ...]
    base_image: str
    requirements: tuple[str, ...]
    layers: int
    cached_steps: int
    steps: int
    seconds: float
    size_mb: float
    #: where it was pushed, by digest (``registry.example.org/fraud@sha256:…``), if it was
    pushed: str | None = None


def default_base_image() -> str:
    import os

    return os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE


def artifacts_label(versions: Sequence[ModelVersion]) -> str:
    """What an image serves, by content: ``v0.0.2=<md5>,…``. Two hubs may both have a
    ``fraud@v0.0.1``; an image is reused only for the same bytes."""
    return ",".join(f"{v.version}={v.meta.artifact.md5}" for v in versions)


def image_labels(versions: Sequence[ModelVersion], hub_id: str) -> dict[str, str]:
    model = versions[0].name
    names = [v.version for v in versions]
    return {
        "modelhub.model": model,
        "modelhub.version": names[0],
        "modelhub.versions": ",".join(names),
        "modelhub.artifacts": artifacts_label(versions),
        "modelhub.hub": hub_id,
        "org.opencontainers.image.title": f"{model} {names[0]}",
        "org.opencontainers.image.vendor": "jupyter-modelhub",
    }


def build_image(
    client: Any,
    registry: ModelRegistry,
    versions: Sequence[ModelVersion],
    *,
    hub_id: str,
    tag: str | None = None,
    base_image: str | None = None,
    progress: Progress | None = None,
) -> BuiltImage:
    """Build the image serving ``versions`` (the first is the champion); returns it.

    Raises:
        InvalidArgument: the base image is not there.
        BackendError: the build failed (the engine's message).
    """
    base_image = base_image or default_base_image()
    say = progress or (lambda line: None)
    try:
        client.images.get(base_image)
    except Exception as exc:
        if type(exc).__name__ != "ImageNotFound":
            raise BackendError(f"The Docker engine did not answer: {exc}") from exc
        raise InvalidArgument(
            f"The base image {base_image} is not in the Docker engine.",
            hint="Create it with `modelhub build-base` (root, debootstrap), or pass "
            "--base-image with an image that has Debian bookworm's python3.11, git and a venv "
            "at /opt/modelhub/venv holding the model server's packages.",
        ) from None
    model = versions[0].name
    names = [v.version for v in versions]
    tag = tag or default_tag(model, names)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelhub-build-") as tmp:
        context = write_context(registry, versions, Path(tmp), base_image=base_image, say=say)
        say(
            f"Building {tag} from {base_image} ({', '.join(context.requirements) or 'no extra packages'})"
        )
        image_id, steps, cached = _stream_build(
            client, str(context.path), tag, image_labels(versions, hub_id), say
        )
    seconds = time.monotonic() - started
    image = client.images.get(image_id)
    built = BuiltImage(
        tag=tag,
        image_id=image_id,
        model=model,
        versions=tuple(names),
        base_image=base_image,
        requirements=context.requirements,
        layers=len(image.attrs["RootFS"]["Layers"]),
        cached_steps=cached,
        steps=steps,
        seconds=round(seconds, 2),
        size_mb=round(image.attrs["Size"] / 1e6, 1),
    )
    say(f"Built {tag} ({image.short_id}) in {seconds:.1f} s, {cached}/{steps} steps from cache")
    return built


def push_image(client: Any, tag: str, progress: Progress | None = None) -> str:
    """Push ``tag`` to its registry (``registry.example.org/fraud:v0.0.2``) with the engine's
    credentials (``docker login``: never ours to keep); the pushed image by digest.

    Raises:
        InvalidArgument: the tag names no registry (it would go to Docker Hub's library).
        BackendError: the push failed (the registry's message: not logged in, unreachable...).
    """
    from docker.utils import parse_repository_tag

    say = progress or (lambda line: None)
    repository, version = parse_repository_tag(tag)
    if "/" not in repository or not any(c in repository.split("/")[0] for c in ".:"):
        raise InvalidArgument(
            f"The tag {tag} names no registry to push to.",
            hint="Tag the image with its registry, e.g. --tag registry.example.org/fraud:v0.0.2 "
            "(or 127.0.0.1:5000/fraud:v0.0.2).",
        )
    digest = ""
    layers: set[str] = set()
    try:
        for chunk in client.api.push(repository, tag=version, stream=True, decode=True):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise BackendError(f"Pushing {tag} failed: {' '.join(str(detail).split())}")
            status, layer = chunk.get("status", ""), chunk.get("id", "")
            if status in ("Pushed", "Layer already exists", "Mounted from") and layer not in layers:
                layers.add(layer)
                say(f"{layer}: {status}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"Pushing {tag} failed: {exc}") from exc
    if not digest:
        raise BackendError(f"Pushing {tag} failed: the registry returned no digest.")
    pushed = f"{repository}@{digest}"
    say(f"Pushed {pushed}")
    return pushed


def _stream_build(
    client: Any, path: str, tag: str, labels: dict[str, str], say: Progress
) -> tuple[str, int, int]:
    """Run the build; the image id, the number of steps and of steps taken from the cache."""
    image_id = ""
    steps = cached = 0
    try:
        for chunk in client.api.build(
            path=path,
            tag=tag,
            labels=labels,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode="none",
            decode=True,
        ):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise BackendError(f"Building {tag} failed: {' '.join(str(detail).split())}")
            text = chunk.get("stream")
            if text:
                for line in _ANSI.sub("", text).splitlines():
                    if not line.strip():
                        continue
                    if line.startswith("Step "):
                        steps += 1
                    elif "Using cache" in line:
                        cached += 1
                    say(line.rstrip())
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"Building {tag} failed: {exc}") from exc
    if not image_id:
        image_id = str(client.images.get(tag).id)
    return image_id, steps, cached


def find_image(client: Any, tag: str, versions: Sequence[ModelVersion]) -> str | None:
    """The id of the image ``tag`` if it serves exactly ``versions`` (the same bytes)."""
    try:
        image = client.images.get(tag)
    except Exception as exc:
        if type(exc).__name__ == "ImageNotFound":
            return None
        raise BackendError(f"The Docker engine did not answer: {exc}") from exc
    if (image.labels or {}).get("modelhub.artifacts") != artifacts_label(versions):
        return None
    return str(image.id)
