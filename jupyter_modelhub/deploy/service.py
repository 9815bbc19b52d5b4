"""``Deployments``: deploy, update, roll back and stop deployments of a hub's models.

Each change is two steps, always in this order: record the desired state (a commit of
``deployments/NAME.yaml``), then ask the deployment's backend to make it true (which blocks
until it is, or raises with the server's own reason). A failed update therefore leaves the
desired state ahead of what serves, as in Kubernetes: ``status`` shows both, and ``rollback``
(to the previous revision) brings them together again.

Changes to one deployment are serialised by a lock of their own (``operation.lock`` in its
runtime folder), held for the whole change; the hub lock is only held to commit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import BackendError, InvalidArgument
from ..registry.lock import hub_lock
from ..registry.refs import ModelRef, SemVer, parse_ref, validate_name
from ..registry.registry import ModelRegistry
from .backend import DeploymentBackend, load_backend
from .records import DeploymentStatus, Revision
from .runtime import RuntimeFolder
from .spec import (
    DEFAULT_HOST,
    DeploymentSpec,
    server_options,
    target_options,
    validate_replicas,
)
from .store import DeploymentStore

OPERATION_TIMEOUT = 600.0

log = logging.getLogger(__name__)


class Deployments:
    """The deployments of one hub; ``Hub`` delegates its deployment verbs here."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.store = DeploymentStore(registry)

    def backend(self, target: str) -> DeploymentBackend:
        return load_backend(target, self.registry)

    @contextmanager
    def _operation(self, name: str) -> Iterator[None]:
        validate_name(name, "deployment name")
        with hub_lock(RuntimeFolder(self.registry.root, name).operation_lock, OPERATION_TIMEOUT):
            yield

    # -- changing -------------------------------------------------------------------------------
    def deploy(
        self,
        ref: str,
        name: str | None = None,
        *,
        replicas: int = 1,
        port: int | None = None,
        host: str = DEFAULT_HOST,
        follow_stage: bool = False,
        target: str = "local",
        server: dict[str, object] | None = None,
        timeout: float | None = None,
        options: dict[str, Any] | None = None,
    ) -> DeploymentStatus:
        """Start serving ``ref`` as deployment ``name`` (default: the model's name).

        ``options`` are the target's (``DeploymentSpec.target_options``); without any, a
        deployment made again under the same name on the same target keeps its earlier ones.
        """
        parsed = parse_ref(ref)
        name = validate_name(name or parsed.name, "deployment name")
        validate_replicas(replicas)
        backend = self.backend(target)
        checked = backend.check_options(target_options(options))
        with self._operation(name):
            current = self.store.get(name)
            if current is not None:
                status = self.backend(current.target).status(current, 0)
                if status.phase not in ("stopped", "failed"):
                    raise InvalidArgument(
                        f"Deployment {name!r} already exists ({current.version_ref} at "
                        f"{current.endpoint}).",
                        hint=f"Change its version with `modelhub update {name} --version REF`, "
                        f"or choose another --name.",
                    )
            version = self.registry.resolve(parsed).version
            spec = DeploymentSpec(
                name=name,
                model=parsed.name,
                ref=str(parsed) if not parsed.latest else f"{parsed.name}@{version}",
                version=version,
                target=target,
                follow_stage=follow_stage,
                replicas=replicas,
                host=host,
                port=port if port is not None else (current.port if current else None),
                server=server_options(server),
                target_options=checked
                or (current.target_options if current and current.target == target else {}),
            )
            spec = backend.prepare(spec)
            self.store.save(spec, f"Deploy {name}: {spec.version_ref}")
            backend.apply(spec, timeout=timeout)
        return self.status(name)

    def update(
        self,
        name: str,
        version: str | None = None,
        *,
        replicas: int | None = None,
        timeout: float | None = None,
    ) -> DeploymentStatus:
        """Roll deployment ``name`` to another version (and/or number of replicas).

        ``version`` is ``v0.0.2``, ``fraud@v0.0.2`` or a stage reference ``fraud#prod`` (which
        the deployment then follows if it followed its stage before).
        """
        if version is None and replicas is None:
            raise InvalidArgument("Nothing to update.", hint="Give a version and/or replicas.")
        with self._operation(name):
            current = self.store.require(name)
            spec = current
            if version is not None:
                ref = self._model_ref(current.model, version)
                resolved = self.registry.resolve(ref).version
                spec = spec.replace(
                    ref=str(ref) if ref.stage else f"{ref.name}@{resolved}",
                    version=resolved,
                    follow_stage=current.follow_stage and ref.stage is not None,
                )
            if replicas is not None:
                spec = spec.replace(replicas=validate_replicas(replicas))
            message = f"Update {name}: {current.version} -> {spec.version}"
            if spec.replicas != current.replicas:
                message += f", {current.replicas} -> {spec.replicas} replicas"
            self.store.save(spec, message)
            self.backend(spec.target).apply(spec, timeout=timeout)
        return self.status(name)

    def rollback(
        self, name: str, to: int | None = None, *, timeout: float | None = None
    ) -> DeploymentStatus:
        """Go back to revision ``to`` (default: the one before the current one).

        The old spec is written again as a new revision, so a rollback can itself be undone.
        """
        with self._operation(name):
            current = self.store.require(name)
            revisions = self.store.revisions(name)
            if to is None:
                if len(revisions) < 2:
                    raise InvalidArgument(
                        f"Deployment {name!r} has a single revision: there is nothing to roll "
                        "back to."
                    )
                to = len(revisions) - 1
            old = self.store.revision(name, to).spec
            self.store.save(old, f"Roll back {name} to revision {to}: {old.version_ref}")
            if old.target != current.target:
                self.backend(current.target).delete(name)
            self.backend(old.target).rollback(old, timeout=timeout)
        return self.status(name)

    def stop(self, name: str) -> bool:
        """Stop deployment ``name`` and remove its desired state. ``False`` if nothing was
        deployed under that name (stopping twice is not an error)."""
        with self._operation(name):
            current = self.store.get(name)
            stopped = self.backend(current.target if current else "local").delete(name)
            removed = self.store.delete(name, f"Stop deployment {name}")
        return stopped or removed

    def sync(self, model: str | None = None, stage: str | None = None) -> list[DeploymentStatus]:
        """Make every deployment match its desired state: roll those that follow a stage to
        the stage's current version, start again those whose supervisor is gone (and what
        else a backend lost, ``DeploymentBackend.resume``).

        Returns the deployments it changed.

        Raises:
            BackendError: some deployments could not be brought up (the others were).
        """
        changed, errors = [], []
        for name in self.store.names():
            spec = self.store.get(name)
            if spec is None or (model and spec.model != model):
                continue
            if stage and spec.stage != stage:
                continue
            try:
                if spec.follow_stage:
                    holder = self.registry.resolve(spec.ref).version
                    if holder != spec.version:
                        changed.append(self.update(name, spec.ref))
                        continue
                with self._operation(name):
                    backend = self.backend(spec.target)
                    restart = backend.status(spec, 0).phase == "stopped"
                    if restart:
                        backend.apply(spec)
                    else:  # e.g. the docker target's experiment controller died
                        restart = backend.resume(spec)
                if restart:
                    changed.append(self.status(name))
            except BackendError as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            raise BackendError("Some deployments did not sync: " + "; ".join(errors))
        return changed

    # -- reading --------------------------------------------------------------------------------
    def status(self, name: str) -> DeploymentStatus:
        spec = self.store.require(name)
        status = self.backend(spec.target).status(spec, self.store.revision_count(name))
        return dataclasses.replace(status, traffic=spec.traffic)

    def all(self) -> list[DeploymentStatus]:
        return [self.status(name) for name in self.store.names()]

    def collect_logs(self, name: str) -> int:
        """Bring deployment ``name``'s prediction and outcome logs to this machine before they
        are read (``DeploymentBackend.collect_logs``; nothing to do for local and docker);
        how many chunk files were copied. Unknown deployments and a backend that cannot be
        loaded or reached copy nothing: the readers then say what they (do not) find."""
        spec = self.store.get(name)
        if spec is None:
            return 0
        try:
            return self.backend(spec.target).collect_logs(spec)
        except (BackendError, InvalidArgument) as exc:
            log.warning("Could not collect the logs of deployment %s: %s", name, exc)
            return 0

    def revisions(self, name: str) -> list[Revision]:
        self.store.require(name)
        return self.store.revisions(name)

    def logs(self, name: str, tail: int = 100) -> list[str]:
        if tail < 0:
            raise InvalidArgument(f"Invalid --tail {tail}: give 0 or more lines.")
        spec = self.store.get(name)
        backend = self.backend(spec.target if spec else "local")
        if spec is None and not RuntimeFolder(self.registry.root, name).path.exists():
            self.store.require(name)  # raises NotFound with the known names
        return backend.logs(name, tail)

    @staticmethod
    def _model_ref(model: str, text: str) -> ModelRef:
        """``v0.0.2`` or ``0.0.2`` means a version of ``model``; else a reference to it."""
        if SemVer.try_parse(text.strip()) is not None:
            return ModelRef(model, version=str(SemVer.parse(text)))
        ref = parse_ref(text)
        if ref.name != model:
            raise InvalidArgument(
                f"This deployment serves {model!r}, not {ref.name!r}.",
                hint="Deploy the other model under its own name.",
            )
        return ref
