"""What a hub contributes to its manifests: the git URL pods clone, and the spec to render.

``render_manifests(registry, name, options)`` is what ``Hub.manifests`` (``modelhub
manifests NAME``) returns: the YAML of a deployment (or of a model reference not deployed yet),
for GitOps users who apply it with Argo CD or Flux rather than through the backend.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...errors import InvalidArgument, NotFound
from ...registry.refs import parse_ref
from ...registry.registry import ModelRegistry
from ..spec import DeploymentSpec, validate_replicas
from ..store import DeploymentStore
from .manifests import HUB_URL_ENV, build_manifests, to_yaml
from .options import KubernetesOptions
from .options import has_credentials as _has_credentials


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def hub_git_url(registry: ModelRegistry, options: KubernetesOptions) -> str | None:
    """The git URL the init container clones (``None``: the Secret gives ``MODELHUB_HUB_URL``).

    Raises:
        InvalidArgument: pods could not get the model: no git URL to give them, a URL with a
            credential in it (it would be written into the manifest), or no DVC remote they
            can reach.
    """
    if options.source != "dvc":
        return None
    remotes = registry.dvc.remotes()
    if not remotes:
        raise InvalidArgument(
            "This hub has no DVC remote, so pods cannot fetch the model from it.",
            hint="Add one (`dvc remote add -d NAME s3://...`), `modelhub push`, then retry; "
            "or bake the hub into the image (source=image).",
        )
    local = sorted(name for name, url in remotes.items() if "://" not in url)
    if local and len(local) == len(remotes):
        raise InvalidArgument(
            f"The hub's DVC remote {local[0]!r} is a folder on this machine, which pods in a "
            "cluster cannot reach.",
            hint="Use an object store (s3://, gs://, azure://, https://) or source=image.",
        )
    url = options.hub_url
    if url and _has_credentials(url):
        raise InvalidArgument(
            "The hub URL carries a credential, which would be written into the manifests.",
            hint=f"Give it without one, or put {HUB_URL_ENV} in the Secret (--secret).",
        )
    if not url:
        origin = registry.git.run("remote", "get-url", "origin", check=False).strip()
        if origin and not _has_credentials(origin):
            url = origin
        elif origin and options.secret:
            url = None  # the Secret holds the URL with its token
        elif origin:
            raise InvalidArgument(
                "The hub's git remote 'origin' carries a credential, which would be written "
                "into the manifests.",
                hint=f"Put {HUB_URL_ENV}={_without_credentials(origin)} with a token in a "
                "Secret and give --secret, or --hub-url without a credential.",
            )
    if not url and not options.secret:
        raise InvalidArgument(
            "Pods need the hub's git URL to fetch the model, and this hub has no 'origin' remote.",
            hint=f"Give --hub-url URL, or a --secret holding {HUB_URL_ENV}, or bake the hub "
            "into the image (source=image).",
        )
    return url


def spec_for(registry: ModelRegistry, name: str, replicas: int | None = None) -> DeploymentSpec:
    """The spec of deployment ``name``, or, when nothing is deployed under that name and it
    is a model reference (``fraud``, ``fraud@v0.0.2``, ``fraud#prod``), a spec serving it."""
    spec = DeploymentStore(registry).get(name) if "@" not in name and "#" not in name else None
    if spec is None:
        try:
            ref = parse_ref(name)
            version = registry.resolve(ref).version
        except (InvalidArgument, NotFound) as exc:
            raise NotFound(
                f"No deployment or model version {name!r}.",
                hint="Give a deployment's name or a model reference (NAME@vX.Y.Z, NAME#STAGE).",
            ) from exc
        spec = DeploymentSpec(
            name=ref.name,
            model=ref.name,
            ref=str(ref) if not ref.latest else f"{ref.name}@{version}",
            version=version,
            target="kubernetes",
        )
    if replicas is not None:
        spec = spec.replace(replicas=validate_replicas(replicas))
    return spec


def render_manifests(registry: ModelRegistry, name: str, given: dict[str, Any]) -> str:
    """The YAML of deployment (or model reference) ``name`` with its Kubernetes options (its
    spec's) and ``given`` ones on top (``replicas`` too)."""
    given = dict(given)
    replicas = given.pop("replicas", None)
    spec = spec_for(registry, name, replicas)
    from .backend import KubernetesBackend

    backend = KubernetesBackend(registry)
    options = backend.options_of(spec).merged(given)
    # the refusal of a policy the target cannot honour, as ``apply`` would say it
    backend.check_traffic(spec)
    return to_yaml(build_manifests(spec, options, hub_url=hub_git_url(registry, options)))
