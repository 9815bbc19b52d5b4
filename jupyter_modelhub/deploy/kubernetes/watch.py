"""How the experiment controller (``deploy.watch``) reads a kubernetes deployment's pods.

The controller runs on the machine that deployed, with the user's kubeconfig (the context and
namespace of the spec's ``target_options``), and needs no port-forward and no route into the
cluster network: it reads each ready pod's ``/metrics`` through the API server's pod proxy
(``GET /api/v1/namespaces/NS/pods/POD:8080/proxy/metrics``; the user needs ``get`` on
``pods/proxy``). It reads the server's main port, which serves ``/metrics`` without a token
(as Prometheus scrapes it): the admin listener of a pod is bound to the pod's loopback, which
the proxy cannot reach. Only the ready pods of the spec's own pod template count, so pods of
the previous policy, still draining during a rollout, are not judged under the new one.
"""

from __future__ import annotations

from typing import Any

from ...registry.registry import ModelRegistry
from ..spec import DeploymentSpec
from ..watch import ScrapeSource
from .backend import ClientFactory, KubernetesBackend, _ignore_missing
from .manifests import CONTAINER_PORT, TEMPLATE_LABEL, deployment, label_selector
from .options import KubernetesOptions
from .render import hub_git_url
from .status import _is_ready

SCRAPE_TIMEOUT = 5.0  # seconds


class PodProxySource(ScrapeSource):
    """The pods of one kubernetes deployment, scraped through the API server."""

    what = "the Kubernetes API"

    def __init__(
        self, registry: ModelRegistry, name: str, client_factory: ClientFactory | None = None
    ) -> None:
        self.registry = registry
        self.backend = KubernetesBackend(registry, client_factory=client_factory)
        self.options: KubernetesOptions = self.backend.options(name)
        self._templates: dict[str, str] = {}
        self._hub_url: tuple[str | None] | None = None

    def _core(self) -> Any:
        return self.backend._apis(self.options)[2]

    def template(self, spec: DeploymentSpec) -> str:
        """The pod-template label of the pods that apply ``spec``."""
        key = spec.to_yaml()
        if key not in self._templates:
            if self._hub_url is None:  # the same for every spec of this deployment
                self._hub_url = (hub_git_url(self.registry, self.options),)
            body = deployment(spec, self.options, hub_url=self._hub_url[0])
            labels = body["spec"]["template"]["metadata"]["labels"]
            self._templates = {key: labels[TEMPLATE_LABEL]}  # only the latest is asked for
        return self._templates[key]

    def targets(self, spec: DeploymentSpec) -> list[str]:
        """The names of the ready pods of ``spec``'s pod template."""
        self.options = self.backend.options_of(spec)
        wanted = self.template(spec)
        api = self.backend._client(self.options)
        pods = self._core().list_namespaced_pod(
            self.options.namespace, label_selector=label_selector(spec.name)
        )
        names = []
        for pod in pods.items:
            raw = api.sanitize_for_serialization(pod)
            meta = raw.get("metadata") or {}
            if (meta.get("labels") or {}).get(TEMPLATE_LABEL) != wanted:
                continue
            if meta.get("deletionTimestamp") or not _is_ready(raw):
                continue
            names.append(str(meta["name"]))
        return sorted(names)

    def fetch(self, target: str) -> str:
        """Pod ``target``'s ``/metrics``, through the API server's pod proxy."""
        from kubernetes.client import ApiException

        try:
            answer = self._core().connect_get_namespaced_pod_proxy_with_path(
                f"{target}:{CONTAINER_PORT}",
                self.options.namespace,
                "metrics",
                _preload_content=False,
                _request_timeout=SCRAPE_TIMEOUT,
            )
        except ApiException as exc:
            raise ConnectionError(f"pod {target}: {exc.status} {exc.reason}") from None
        except Exception as exc:
            if isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3"):
                raise ConnectionError(f"pod {target}: {exc}") from None
            raise
        text: str = answer.data.decode("utf-8", "replace")
        return text

    def running(self, name: str) -> bool:
        """Whether the deployment's Deployment object is still there."""
        apps = self.backend._apis(self.options)[1]
        found = _ignore_missing(
            lambda: apps.read_namespaced_deployment(name, self.options.namespace)
        )
        return found is not None
