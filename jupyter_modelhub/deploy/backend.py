"""``DeploymentBackend``: what a deployment target must do, and how targets are found.

A backend makes a ``DeploymentSpec`` true on its target and reports how it is doing. ``local``
ships with the package; others (Docker, Kubernetes, a company's own) are classes registered in
the entry-point group ``jupyter_modelhub.backends`` under their target name::

    [project.entry-points."jupyter_modelhub.backends"]
    nomad = "acme_modelhub.nomad:NomadBackend"

and are checked when loaded: the entry point must name a ``DeploymentBackend`` subclass.
"""

from __future__ import annotations

import abc
from importlib.metadata import entry_points

from ..errors import InvalidArgument
from ..registry.registry import ModelRegistry
from .records import DeploymentStatus
from .spec import DeploymentSpec

ENTRY_POINT_GROUP = "jupyter_modelhub.backends"


class DeploymentBackend(abc.ABC):
    """One deployment target. Every method is synchronous; ``apply`` blocks until ready.

    Args:
        registry: the hub's registry, for backends that need the model's files (to build an
            image, for instance) or its runtime folder.
    """

    target: str = ""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def prepare(self, spec: DeploymentSpec) -> DeploymentSpec:
        """Fill in what the target chooses before the spec is recorded (e.g. a free port)."""
        return spec

    @abc.abstractmethod
    def apply(self, spec: DeploymentSpec, timeout: float | None = None) -> None:
        """Make ``spec`` run: create the deployment, or roll it to the new spec without
        downtime. Returns once it serves ``spec``.

        Raises:
            BackendError: it did not become ready; the message is the server's own reason,
                and whatever served before keeps serving.
        """

    @abc.abstractmethod
    def status(self, spec: DeploymentSpec, revision: int) -> DeploymentStatus:
        """How the deployment of ``spec`` is doing right now."""

    @abc.abstractmethod
    def delete(self, name: str) -> bool:
        """Stop and remove the deployment ``name``; ``True`` if something was running.

        Idempotent: deleting what does not run is not an error.
        """

    @abc.abstractmethod
    def logs(self, name: str, tail: int = 100) -> list[str]:
        """The last ``tail`` lines of the deployment's logs."""

    def rollback(self, spec: DeploymentSpec, timeout: float | None = None) -> None:
        """Go back to an earlier ``spec``. The desired state in git is the rollback log, so
        by default this is an ``apply`` of the old spec; a target may do better."""
        self.apply(spec, timeout=timeout)


def builtin_backends() -> dict[str, type[DeploymentBackend]]:
    from .local import LocalBackend

    return {"local": LocalBackend}


def backend_class(target: str) -> type[DeploymentBackend]:
    """The backend class of a target name: a built-in one, else an entry point.

    Raises:
        InvalidArgument: no backend has this name, or its entry point is not a backend.
    """
    builtin = builtin_backends()
    if target in builtin:
        return builtin[target]
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
    if not found:
        known = sorted({*builtin, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})
        raise InvalidArgument(
            f"Unknown deployment target {target!r}.", hint=f"Known targets: {', '.join(known)}."
        )
    try:
        loaded = found[0].load()
    except Exception as exc:
        raise InvalidArgument(
            f"The deployment target {target!r} ({found[0].value}) failed to load: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, DeploymentBackend)):
        raise InvalidArgument(
            f"The deployment target {target!r} ({found[0].value}) is not a DeploymentBackend "
            "subclass.",
            hint="Its entry point must name a class derived from "
            "jupyter_modelhub.deploy.DeploymentBackend.",
        )
    return loaded


def load_backend(target: str, registry: ModelRegistry) -> DeploymentBackend:
    return backend_class(target)(registry)
