"""How the experiment controller (``deploy.watch``) reads a docker deployment's replicas:
the running containers that apply the spec (found by their labels), each on its admin port on
the host (from its ``MODELHUB-READY`` line), whose ``/metrics`` needs no token."""

from __future__ import annotations

from typing import Any

from ...registry.registry import ModelRegistry
from ..controller import admin_url, fetch_metrics
from ..spec import DeploymentSpec
from ..watch import ScrapeSource


class DockerSource(ScrapeSource):
    """The containers of one docker deployment, as the controller scrapes them."""

    what = "the Docker engine"

    def __init__(self, registry: ModelRegistry, name: str, client: Any = None) -> None:
        from .backend import DockerBackend

        self.backend = DockerBackend(registry, client=client)
        self._ports: dict[tuple[str, str], int | None] = {}

    def targets(self, spec: DeploymentSpec) -> list[str]:
        """Admin addresses of the running containers that apply ``spec`` (its digest label)."""
        from .backend import LABEL_SPEC, _ready_line, _running, spec_digest

        digest = spec_digest(spec)
        urls = []
        for container in self.backend._containers(spec.name):
            if container.labels.get(LABEL_SPEC) != digest or not _running(container):
                continue
            started = (container.attrs.get("State") or {}).get("StartedAt", "")
            key = (container.id, started)
            if self._ports.get(key) is None:  # a restarted container has a new admin port
                ready = _ready_line(container)
                self._ports[key] = getattr(ready, "admin_port", None)
            port = self._ports[key]
            if port:
                urls.append(admin_url(port))
        return urls

    def fetch(self, target: str) -> str:
        return fetch_metrics(target)

    def running(self, name: str) -> bool:
        return bool(self.backend._containers(name))
