"""The ``docker`` deployment target: model images built from the hub, containers that serve.

- ``context``: the build context (Dockerfile, locked requirements, the model's small hub);
- ``wheelhouse``: wheels downloaded on the host, and this package as a wheel;
- ``baseimage``: the base image made from Debian's packages (``modelhub build-base``);
- ``images``: building through the docker SDK, progress streamed;
- ``backend``: ``DockerBackend``, containers that serve deployments;
- ``entrypoint``: what runs in a container (no docker SDK there: this package's attributes
  are imported when used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_modelhub._lazy import lazy_exports

if TYPE_CHECKING:
    from .backend import DockerBackend
    from .images import BuiltImage

__getattr__, __dir__ = lazy_exports(__name__, {"DockerBackend": "backend", "BuiltImage": "images"})

__all__ = ["BuiltImage", "DockerBackend"]
