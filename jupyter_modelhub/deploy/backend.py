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
from typing import Any

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
    #: the traffic policies (``TrafficPolicy.kind``) this target honours exactly as
    #: ``experiments.policy`` defines them; any other is refused, never approximated
    traffic_kinds: frozenset[str] = frozenset()
    #: why the others are refused, said with the refusal
    traffic_refusal: str = ""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def check_traffic(self, spec: DeploymentSpec) -> None:
        """Refuse a traffic policy this target cannot honour.

        Raises:
            InvalidArgument: naming the policy, the target, and the targets that can.
        """
        policy = spec.traffic
        if policy is None or not policy.running or policy.kind in self.traffic_kinds:
            return
        able = sorted(
            name for name, cls in builtin_backends().items() if policy.kind in cls.traffic_kinds
        )
        why = f" {self.traffic_refusal}" if self.traffic_refusal else ""
        raise InvalidArgument(
            f"The {self.target or type(self).__name__} target cannot run a {policy.kind} "
            f"experiment the way it is defined, so it refuses it.{why}",
            hint=f"Targets that can: {', '.join(able) or 'none'}.",
        )

    def check_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """The target options of a new deployment (``DeploymentSpec.target_options``),
        checked and in the form to record. By default a target takes none.

        Raises:
            InvalidArgument: an option this target does not take (naming the ones it does).
        """
        if given:
            raise InvalidArgument(
                f"The {self.target or type(self).__name__} target takes no target options "
                f"({', '.join(sorted(given))})."
            )
        return {}

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

    def collect_logs(self, spec: DeploymentSpec) -> int:
        """Bring the replicas' prediction and outcome logs into the deployment's runtime folder
        on this machine (``RuntimeFolder.predictions``), where the A/B and shadow reports,
        ``quality`` and drift read them; how many chunk files were copied. A replica that
        cannot be read is skipped with a warning. By default the replicas write there directly
        (local, docker) and there is nothing to do."""
        return 0

    def resume(self, spec: DeploymentSpec) -> bool:
        """Start again what a running deployment needs beside its replicas and lost (the
        docker and kubernetes targets' experiment controller); ``True`` if it did.
        ``sync-deployments`` calls it; by default there is nothing of the kind."""
        return False

    def rollback(self, spec: DeploymentSpec, timeout: float | None = None) -> None:
        """Go back to an earlier ``spec``. The desired state in git is the rollback log, so
        by default this is an ``apply`` of the old spec; a target may do better."""
        self.apply(spec, timeout=timeout)


#: targets that ship with the package (module:class, imported when used)
BUILTIN_TARGETS = {
    "local": "jupyter_modelhub.deploy.local:LocalBackend",
    "docker": "jupyter_modelhub.deploy.docker:DockerBackend",
    "kubernetes": "jupyter_modelhub.deploy.kubernetes:KubernetesBackend",
}


def builtin_backends() -> dict[str, type[DeploymentBackend]]:
    """The built-in targets whose module is present (docker and kubernetes are optional)."""
    import importlib

    out: dict[str, type[DeploymentBackend]] = {}
    for name, where in BUILTIN_TARGETS.items():
        module, _, attr = where.partition(":")
        try:
            out[name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue  # not built yet, or its client library is not installed
    return out


def available_targets() -> list[str]:
    """The names of the usable targets: built-in ones whose module imports, then plugins."""
    names = [name for name in BUILTIN_TARGETS if name in builtin_backends()]
    plugins = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} - set(names)
    return names + sorted(plugins)


def backend_class(target: str) -> type[DeploymentBackend]:
    """The backend class of a target name: a built-in one, else an entry point.

    Raises:
        InvalidArgument: no backend has this name, or its entry point is not a backend.
    """
    if target in BUILTIN_TARGETS:
        import importlib

        module, _, attr = BUILTIN_TARGETS[target].partition(":")
        try:
            loaded_builtin: type[DeploymentBackend] = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            raise InvalidArgument(
                f"The {target} target needs the Python package {exc.name!r}, which is not "
                "installed.",
                hint=f"pip install {exc.name}",
            ) from exc
        return loaded_builtin
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
    if not found:
        known = sorted(
            {*builtin_backends(), *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))}
        )
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
