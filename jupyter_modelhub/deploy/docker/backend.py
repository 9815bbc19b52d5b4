"""``DockerBackend``: a deployment's replicas as containers of a model image.

- Each replica is one container of the image serving the spec's versions (built from the hub
  on first use, or beforehand with ``modelhub build``), running the same model server as the
  local target with the host's network. All replicas share the deployment's one port on
  127.0.0.1 through ``SO_REUSEPORT`` (see ``entrypoint``), so the endpoint never changes.
- Containers carry labels (``modelhub.deployment``, ``modelhub.hub``, ``modelhub.version``,
  ``modelhub.spec``, ``app.kubernetes.io/*``) by which ``status``, ``stop`` and ``logs`` find
  them; the engine restarts them if they crash (``unless-stopped``).
- ``apply`` starts the new containers next to the old ones, waits for each to announce
  ``MODELHUB-READY`` and answer ready, then stops the old ones (SIGTERM: they drain): no
  request is refused. If a new container cannot load its model, its own reason is raised and
  the new containers are removed; the old ones never stopped serving.
- A traffic policy is the server's ``--traffic``, as on the local target; a policy change
  rolls the containers the same way, so every policy routes exactly as locally. A split or a
  canary also needs its guardrails judged and its steps taken: ``apply`` starts the
  deployment's experiment controller (``deploy.watch``), a detached process running the local
  supervisor's ``ExperimentController`` against the containers' admin ``/metrics``;
  ``delete`` stops it, ``status`` says whether it runs, ``resume`` (``sync-deployments``)
  starts it again if it died.
- Prediction logs go to the deployment's runtime folder (a bind mount); the containers run
  as the deploying user, so the files are the user's. No credential is passed to a container.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import docker
import docker.errors

from ...errors import BackendError
from ...experiments.policy import CHAMPION
from ...registry.registry import ModelRegistry
from ...serving.contract import parse_status_line
from .. import watch
from ..backend import DeploymentBackend
from ..local import pick_free_port, probe
from ..records import DeploymentStatus, Phase, ReplicaStatus
from ..runtime import RuntimeFolder
from ..spec import DeploymentSpec
from .context import IMAGE_LOG_DIR, default_tag
from .images import BuiltImage, build_image, default_base_image, find_image, push_image

READY_TIMEOUT = 120.0
POLL_INTERVAL = 0.05
STOP_GRACE = 10
LABEL_DEPLOYMENT = "modelhub.deployment"
LABEL_HUB = "modelhub.hub"
LABEL_SPEC = "modelhub.spec"


def hub_id(registry: ModelRegistry) -> str:
    """A short id of the hub's folder: two hubs may each have a deployment called ``fraud``."""
    return hashlib.sha1(str(registry.root.resolve()).encode(), usedforsecurity=False).hexdigest()[
        :12
    ]


def spec_digest(spec: DeploymentSpec) -> str:
    """What a container is made of: containers of the same digest need no replacement."""
    data = json.dumps([repr(spec.replica_key()), spec.traffic_json()], sort_keys=True)
    return hashlib.sha1(data.encode(), usedforsecurity=False).hexdigest()[:16]


def docker_client() -> Any:
    """A client of the Docker engine (``DOCKER_HOST`` or the local socket) that answered.

    Raises:
        BackendError: no engine answers.
    """
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise BackendError(
            f"No Docker engine answers: {exc}",
            hint="Start dockerd (or Docker Desktop), or set DOCKER_HOST.",
        ) from exc
    return client


class DockerBackend(DeploymentBackend):
    """Deploys model images as containers on the local Docker engine."""

    target = "docker"
    traffic_kinds = frozenset({"split", "canary", "bluegreen", "shadow"})

    def __init__(self, registry: ModelRegistry, client: Any = None) -> None:
        super().__init__(registry)
        self._client = client
        self.hub_id = hub_id(registry)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def runtime(self, name: str) -> RuntimeFolder:
        return RuntimeFolder(self.registry.root, name)

    def prepare(self, spec: DeploymentSpec) -> DeploymentSpec:
        return spec if spec.port else spec.replace(port=pick_free_port(spec.host))

    # -- images ----------------------------------------------------------------------------------
    def build(
        self,
        ref: str,
        *,
        challengers: tuple[str, ...] = (),
        tag: str | None = None,
        base_image: str | None = None,
        progress: Callable[[str], None] | None = None,
        push: bool = False,
    ) -> BuiltImage:
        """Build the image of ``ref`` (and of versions ``challengers`` of the same model);
        with ``push``, push it to the registry its tag names."""
        champion = self.registry.show(ref)
        versions = [champion] + [
            self.registry.show(f"{champion.name}@{v}") for v in challengers if v != champion.version
        ]
        built = build_image(
            self.client,
            self.registry,
            versions,
            hub_id=self.hub_id,
            tag=tag,
            base_image=base_image,
            progress=progress,
        )
        if not push:
            return built
        return dataclasses.replace(built, pushed=push_image(self.client, built.tag, progress))

    def image_for(self, spec: DeploymentSpec) -> str:
        """The id of the image serving the spec's variants (the same bytes as the hub's),
        built now if the engine has none."""
        variants = spec.variants
        champion = variants.pop(CHAMPION, spec.version)
        names = [champion, *sorted(set(variants.values()) - {champion})]
        versions = [self.registry.show(f"{spec.model}@{v}") for v in names]
        tag = default_tag(spec.model, names)
        found = find_image(self.client, tag, versions)
        if found is not None:
            return found
        log = self.runtime(spec.name)
        log.create()
        with open(log.log_file, "a", encoding="utf-8") as out:
            built = build_image(
                self.client,
                self.registry,
                versions,
                hub_id=self.hub_id,
                tag=tag,
                base_image=default_base_image(),
                progress=lambda line: print(f"[build] {line}", file=out, flush=True),
            )
        return built.image_id

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, spec: DeploymentSpec, timeout: float | None = None) -> None:
        self.check_traffic(spec)
        runtime = self.runtime(spec.name)
        try:
            self._apply(spec, timeout)
        except BackendError as exc:
            # kept for ``status`` (the containers that failed are gone)
            runtime.create()
            runtime.write_state({"update": {"result": "failed", "error": str(exc)}})
            raise
        runtime.write_state({"update": {"result": "ok", "version": spec.version}})
        watch.ensure(self.registry.root, spec)

    def resume(self, spec: DeploymentSpec) -> bool:
        """Start the experiment controller again if the spec needs one and it died."""
        return watch.resume(self.registry.root, spec, lambda: bool(self._containers(spec.name)))

    def _apply(self, spec: DeploymentSpec, timeout: float | None) -> None:
        image = self.image_for(spec)
        digest = spec_digest(spec)
        old = self._containers(spec.name)
        current = [c for c in old if c.labels.get(LABEL_SPEC) == digest and _running(c)]
        if len(current) == spec.replicas and len(old) == spec.replicas:
            return  # already serving this spec
        self._check_port(spec, old)
        self.runtime(spec.name).create()
        token = secrets.token_hex(3)
        started: list[Any] = []
        timeout = timeout or READY_TIMEOUT
        deadline = time.monotonic() + timeout
        try:
            for slot in range(spec.replicas):
                started.append(self._run(spec, image, digest, token, slot))
            for container in started:
                self._wait_ready(spec, container, deadline, timeout)
        except BaseException:
            for container in started:
                self._remove(container, save_logs=True)
            raise
        for container in started:
            with contextlib.suppress(docker.errors.APIError):
                container.update(restart_policy={"Name": "unless-stopped"})
        with ThreadPoolExecutor(max_workers=max(1, min(len(old), 8))) as pool:
            list(pool.map(lambda c: self._remove(c, save_logs=True), old))

    def _check_port(self, spec: DeploymentSpec, old: list[Any]) -> None:
        """Refuse a port that something else serves: ``SO_REUSEPORT`` would otherwise let two
        deployments share it, each answering part of the other's requests."""
        others = self.client.containers.list(
            filters={"label": [LABEL_DEPLOYMENT, f"modelhub.port={spec.port}"]}
        )
        taken = [c for c in others if c not in old]
        if taken:
            owner = taken[0].labels.get(LABEL_DEPLOYMENT)
            raise BackendError(
                f"Port {spec.port} is served by the docker deployment {owner!r}.",
                hint="Choose another --port (or none to pick a free one).",
            )
        if old:
            return  # our own containers hold it
        family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe_socket:
            try:
                probe_socket.bind((spec.host, spec.port or 0))
            except OSError as exc:
                raise BackendError(
                    f"Cannot serve on {spec.host}:{spec.port}: {exc.strerror or exc}.",
                    hint="Choose another --port (or none to pick a free one).",
                ) from exc

    def _run(self, spec: DeploymentSpec, image: str, digest: str, token: str, slot: int) -> Any:
        runtime = self.runtime(spec.name)
        command = [spec.version_ref, "--host", spec.host, "--port", str(spec.port)]
        command += ["--deployment", spec.name, "--log-dir", IMAGE_LOG_DIR]
        for key, value in sorted(spec.server.items()):
            command += [f"--{key.replace('_', '-')}", str(value)]
        traffic = spec.traffic_json()
        if traffic is not None and spec.traffic is not None and spec.traffic.running:
            command += ["--traffic", traffic]
        labels = {
            LABEL_DEPLOYMENT: spec.name,
            LABEL_HUB: self.hub_id,
            LABEL_SPEC: digest,
            "modelhub.model": spec.model,
            "modelhub.version": spec.version,
            "modelhub.slot": str(slot),
            "modelhub.port": str(spec.port),
            "app.kubernetes.io/name": spec.model,
            "app.kubernetes.io/instance": spec.name,
            "app.kubernetes.io/version": spec.version,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/managed-by": "jupyter-modelhub",
        }
        try:
            return self.client.containers.run(
                image,
                command,
                name=f"modelhub-{spec.name}-{token}-{slot}",
                detach=True,
                network_mode="host",
                labels=labels,
                user=f"{os.getuid()}:{os.getgid()}",
                volumes={str(runtime.predictions): {"bind": IMAGE_LOG_DIR, "mode": "rw"}},
                stop_signal="SIGTERM",
            )
        except docker.errors.DockerException as exc:
            raise BackendError(f"Docker could not start a container of {image}: {exc}") from exc

    def _wait_ready(
        self, spec: DeploymentSpec, container: Any, deadline: float, timeout: float
    ) -> None:
        """Return once ``container`` announced READY and answers ready; else raise with the
        server's own reason."""
        while True:
            container.reload()
            ready = _ready_line(container)
            if isinstance(ready, str):
                raise BackendError(f"Deployment {spec.name} failed: {ready}")
            if ready is not None and probe(ready.admin_port) == "ready":
                return
            if container.status in ("exited", "dead"):
                code = container.attrs["State"].get("ExitCode")
                tail = _lines(container, 5)
                raise BackendError(
                    f"Deployment {spec.name} failed: the container exited ({code})"
                    + (f": {tail[-1]}" if tail else "."),
                    hint=f"See `modelhub logs {spec.name}`.",
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"Deployment {spec.name} is not ready after {timeout:.0f} s.",
                    hint=f"See `modelhub logs {spec.name}`.",
                )
            time.sleep(POLL_INTERVAL)

    # -- status, logs, delete ---------------------------------------------------------------------
    def _containers(self, name: str) -> list[Any]:
        found = self.client.containers.list(
            all=True,
            filters={"label": [f"{LABEL_DEPLOYMENT}={name}", f"{LABEL_HUB}={self.hub_id}"]},
        )
        return sorted(
            found, key=lambda c: (c.attrs.get("Created", ""), c.labels.get("modelhub.slot", ""))
        )

    def status(self, spec: DeploymentSpec, revision: int) -> DeploymentStatus:
        containers = self._containers(spec.name)
        rows = [(c, _ready_line(c)) for c in containers]
        with ThreadPoolExecutor(max_workers=max(1, min(len(rows), 16))) as pool:
            health = list(pool.map(lambda row: _health(*row), rows))
        replicas = tuple(_replica(c, r, h) for (c, r), h in zip(rows, health, strict=True))
        digest = spec_digest(spec)
        serving = [r for (c, _), r in zip(rows, replicas, strict=True) if r.health == "ready"]
        current = [c for c, _ in rows if c.labels.get(LABEL_SPEC) == digest]
        update = self.runtime(spec.name).read_state().get("update") or {}
        failed = update.get("result") == "failed"
        phase: Phase
        if not containers:
            phase = "failed" if failed else "stopped"
        elif len(current) != len(containers) and not (failed and not current):
            phase = "updating"  # a rollout is under way (after a failed one, the old serve)
        elif len(serving) >= spec.replicas:
            phase = "running"
        elif serving:
            phase = "degraded"
        else:
            phase = "starting" if any(_running(c) for c, _ in rows) else "failed"
        errors = [r.last_error for r in replicas if r.last_error]
        if failed:
            errors.append(str(update.get("error")))
        controller, missing = watch.controller_status(
            self.runtime(spec.name), spec, running=bool(containers)
        )
        if missing:
            errors.append(missing)
        last_error = errors[-1] if errors else None
        return DeploymentStatus.of(
            spec,
            target=self.target,
            revision=revision,
            phase=phase,
            replicas=replicas,
            serving_version=serving[0].version if serving else None,
            last_error=last_error,
            controller=controller,
        )

    def logs(self, name: str, tail: int = 100) -> list[str]:
        """The saved output of removed containers, then that of the running ones."""
        lines = self.runtime(name).tail(tail)
        with contextlib.suppress(BackendError):
            for container in self._containers(name):
                prefix = f"[{container.labels.get('modelhub.version', '')} slot {container.labels.get('modelhub.slot', '')}] "
                lines += [prefix + line for line in _lines(container, tail)]
        return lines[-tail:] if tail else []

    def delete(self, name: str) -> bool:
        watch.stop(self.registry.root, name)
        containers = self._containers(name)
        with ThreadPoolExecutor(max_workers=max(1, min(len(containers), 8))) as pool:
            list(pool.map(lambda c: self._remove(c, save_logs=True), containers))
        return bool(containers)

    def _remove(self, container: Any, save_logs: bool) -> None:
        """Stop (SIGTERM: the server drains) and remove a container, keeping its output in
        the deployment's log file."""
        # A container whose server failed may be between two restarts: the engine then refuses
        # the update ("container not running") or the stop; the forced removal below ends it.
        with contextlib.suppress(docker.errors.APIError):  # NotFound is an APIError
            container.update(restart_policy={"Name": "no"})
        with contextlib.suppress(docker.errors.APIError):
            container.stop(timeout=STOP_GRACE)
        if save_logs:
            with contextlib.suppress(docker.errors.APIError, OSError):  # its output: best effort
                name = container.labels.get(LABEL_DEPLOYMENT, "")
                runtime = self.runtime(name)
                runtime.create()
                when = datetime.now(timezone.utc).isoformat(timespec="seconds")
                with open(runtime.log_file, "a", encoding="utf-8") as out:
                    out.write(
                        f"--- {when} container {container.name} ({container.labels.get('modelhub.version')}) removed; its output:\n"
                    )
                    for line in _lines(container, 0):
                        out.write(line + "\n")
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def _running(container: Any) -> bool:
    return container.status in ("created", "running", "restarting")


def _lines(container: Any, tail: int) -> list[str]:
    """The container's output (all of it with ``tail`` 0)."""
    try:
        raw = container.logs(stdout=True, stderr=True, tail=tail if tail else "all")
    except docker.errors.DockerException:
        return []
    return raw.decode("utf-8", "replace").splitlines()


def _ready_line(container: Any) -> Any:
    """The server's READY (a ``Ready``) or FAILED (the reason) line, or ``None`` yet."""
    try:
        out = container.logs(stdout=True, stderr=False, tail="all")
    except docker.errors.DockerException:
        return None
    found = None
    for line in out.decode("utf-8", "replace").splitlines():
        parsed = parse_status_line(line)
        if parsed is not None:
            found = parsed
    return found


def _health(container: Any, ready: Any) -> str:
    if not _running(container):
        return "unreachable"
    if ready is None or isinstance(ready, str):
        return "starting" if ready is None else "unreachable"
    return probe(ready.admin_port)


def _replica(container: Any, ready: Any, health: str) -> ReplicaStatus:
    state = container.attrs.get("State", {})
    started_text = state.get("StartedAt") or ""
    started = None
    with contextlib.suppress(ValueError):
        started = datetime.fromisoformat(started_text[:26].rstrip("Z") + "+00:00")
    uptime = (datetime.now(timezone.utc) - started).total_seconds() if started else None
    docker_health = (state.get("Health") or {}).get("Status")
    return ReplicaStatus(
        slot=int(container.labels.get("modelhub.slot", 0)),
        pid=state.get("Pid") or None,
        port=int(container.labels.get("modelhub.port", 0)) or None,
        admin_port=None if ready is None or isinstance(ready, str) else ready.admin_port,
        version=container.labels.get("modelhub.version", ""),
        state=f"{container.status}" + (f" ({docker_health})" if docker_health else ""),
        health=health,
        started=started,
        uptime_s=round(uptime, 1) if uptime is not None else None,
        restarts=int(container.attrs.get("RestartCount") or 0),
        last_error=ready if isinstance(ready, str) else None,
    )
