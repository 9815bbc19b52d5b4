"""``KubernetesOptions``: where and how a deployment runs on a cluster, and where they are kept.

A ``DeploymentSpec`` says what to serve; these options say where on Kubernetes (namespace,
kubeconfig context), from which image, with which resources and autoscaling, and how a pod gets
the model (fetched with DVC at start, or baked into the image). They name things (a context, a
Secret) and never hold a credential: kubeconfig files and DVC remote keys stay where they are
(the user's kubeconfig, a Secret in the cluster).

They are kept in the deployment's spec (``DeploymentSpec.target_options``, committed with
``deployments/NAME.yaml``), so revisions, rollbacks and a deployment made again under the same
name carry them; only the options given are written. Deployments made before that kept them
in ``<hub>/.modelhub/targets/kubernetes/NAME.yaml`` (``OptionsStore``, not versioned): that
file is still read for a spec without options, and removed when the deployment stops.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from ...errors import InvalidArgument
from ...models import Record
from ...registry.dvcstore import atomic_write, remove_path
from ...registry.registry import RUNTIME_DIR

DEFAULT_IMAGE = "jupyter-modelhub:latest"
Source = Literal["dvc", "image"]
SOURCES = ("dvc", "image")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# RFC 1123 label (namespaces, Secret names are subdomains but a label is always valid)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T|e[0-9]+)?$")
_RESOURCE_FIELDS = ("cpu_request", "memory_request", "cpu_limit", "memory_limit")


@dataclass(frozen=True)
class KubernetesOptions(Record):
    """How one deployment runs on a cluster.

    Attributes:
        namespace: the namespace of its Deployment, Service and HorizontalPodAutoscaler.
        context: the kubeconfig context to use (``None``: the current one, or in-cluster).
        image: an image with ``jupyter-modelhub`` (and ``git``/``dvc`` for ``source="dvc"``).
        source: ``dvc``: an init container clones the hub and pulls the served versions from
            its DVC remote at pod start; ``image``: the hub is baked into the image at
            ``hub_path``.
        hub_url: the hub's git URL for ``dvc`` (default: its ``origin`` remote, without any
            credentials in it); leave out to take ``MODELHUB_HUB_URL`` from ``secret``.
        secret: a Secret whose keys become the init container's environment (DVC remote
            credentials such as ``AWS_ACCESS_KEY_ID``, or ``MODELHUB_HUB_URL``).
        hpa_min, hpa_max, hpa_cpu: a HorizontalPodAutoscaler between ``hpa_min`` and
            ``hpa_max`` replicas at ``hpa_cpu`` % of the CPU request (off unless ``hpa_max``).
    """

    namespace: str = "default"
    context: str | None = None
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    source: Source = "dvc"
    hub_url: str | None = None
    hub_path: str = "/hub"
    secret: str | None = None
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str | None = None
    memory_limit: str | None = "1Gi"
    hpa_min: int | None = None
    hpa_max: int | None = None
    hpa_cpu: int = 80
    service_type: str = "ClusterIP"

    def __post_init__(self) -> None:
        for label, value in (("namespace", self.namespace), ("secret", self.secret)):
            if value is not None and not _DNS_LABEL.match(str(value)):
                raise InvalidArgument(
                    f"Invalid {label} {value!r}.",
                    hint="Use lowercase letters, digits and '-' (at most 63 characters).",
                )
        if self.hub_url is not None and has_credentials(self.hub_url):
            raise InvalidArgument(
                "The hub URL carries a credential, which would be written into the spec and "
                "the manifests.",
                hint="Give it without one, or put MODELHUB_HUB_URL in the Secret (--secret).",
            )
        if self.context is not None and (not self.context or "\n" in self.context):
            raise InvalidArgument(f"Invalid kubeconfig context {self.context!r}.")
        if not self.image or any(c.isspace() for c in self.image):
            raise InvalidArgument(f"Invalid image {self.image!r}.")
        if self.source not in SOURCES:
            raise InvalidArgument(
                f"Invalid model source {self.source!r}.", hint="Use dvc or image."
            )
        if not self.hub_path.startswith("/"):
            raise InvalidArgument(f"The hub path {self.hub_path!r} must be absolute.")
        if self.image_pull_policy not in PULL_POLICIES:
            raise InvalidArgument(
                f"Invalid image pull policy {self.image_pull_policy!r}.",
                hint=f"Use one of {', '.join(PULL_POLICIES)}.",
            )
        if self.service_type not in SERVICE_TYPES:
            raise InvalidArgument(
                f"Invalid service type {self.service_type!r}.",
                hint=f"Use one of {', '.join(SERVICE_TYPES)}.",
            )
        for name in _RESOURCE_FIELDS:
            value = getattr(self, name)
            if value is not None and not _QUANTITY.match(str(value)):
                raise InvalidArgument(
                    f"Invalid {name.replace('_', ' ')} {value!r}.",
                    hint="Write a Kubernetes quantity: 250m, 1, 512Mi, 2Gi.",
                )
        self._check_autoscaling()

    def _check_autoscaling(self) -> None:
        for name in ("hpa_min", "hpa_max", "hpa_cpu"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidArgument(f"{name} must be an integer, not {value!r}.")
        if self.hpa_min is not None and self.hpa_max is None:
            raise InvalidArgument(
                "An autoscaler needs --hpa-max.", hint="Give --hpa-max (and --hpa-min)."
            )
        if self.hpa_max is not None:
            low = self.hpa_min if self.hpa_min is not None else 1
            if not 1 <= low <= self.hpa_max:
                raise InvalidArgument(
                    f"Invalid autoscaling range {low}..{self.hpa_max}.",
                    hint="Give 1 <= --hpa-min <= --hpa-max.",
                )
        if not 1 <= self.hpa_cpu <= 1000:
            raise InvalidArgument(
                f"hpa_cpu is a percentage of the CPU request, not {self.hpa_cpu}."
            )
        if self.hpa_max is not None and self.cpu_request is None:
            raise InvalidArgument("An autoscaler on CPU needs a CPU request.")

    @property
    def autoscaled(self) -> bool:
        return self.hpa_max is not None

    def replace(self, **changes: Any) -> KubernetesOptions:
        return dataclasses.replace(self, **changes)

    def merged(self, given: dict[str, Any] | None) -> KubernetesOptions:
        """These options with ``given`` ones on top (``None`` values leave one unchanged).

        Raises:
            InvalidArgument: an unknown option or a bad value.
        """
        given = {k: v for k, v in (given or {}).items() if v is not None}
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise InvalidArgument(
                f"Unknown Kubernetes option(s): {', '.join(unknown)}.",
                hint=f"The options are {', '.join(sorted(known))}.",
            )
        return self.replace(**given)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> KubernetesOptions:
        return cls().merged(data)

    @staticmethod
    def check(given: dict[str, Any]) -> dict[str, Any]:
        """``given`` checked (unknown option, bad value) and reduced to the options given, in
        their types: what a spec records.

        Raises:
            InvalidArgument: an unknown option (naming the known ones) or a bad value.
        """
        options = KubernetesOptions().merged(given)
        return {k: getattr(options, k) for k in sorted(given) if given[k] is not None}


def has_credentials(url: str) -> bool:
    """Whether a URL carries a password or token (an scp-like ``git@host:path`` does not)."""
    if "://" not in url:
        return False  # the user is not a secret, keys live elsewhere
    parts = urlsplit(url)
    return parts.password is not None or (parts.username is not None and parts.scheme != "ssh")


class OptionsStore:
    """Where deployments made before ``DeploymentSpec.target_options`` kept their Kubernetes
    options: one small YAML file each, per machine (read, never written, by the backend)."""

    def __init__(self, hub_root: Path) -> None:
        self.folder = Path(hub_root) / RUNTIME_DIR / "targets" / "kubernetes"

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.yaml"

    def get(self, name: str) -> KubernetesOptions:
        """The options of deployment ``name`` (the defaults if none were given)."""
        path = self.path(name)
        if not path.is_file():
            return KubernetesOptions()
        return KubernetesOptions.from_dict(yaml.safe_load(path.read_text()) or {})

    def save(self, name: str, options: KubernetesOptions) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in options.to_dict().items() if v is not None}
        atomic_write(self.path(name), yaml.safe_dump(data, sort_keys=False))

    def delete(self, name: str) -> None:
        remove_path(self.path(name))
