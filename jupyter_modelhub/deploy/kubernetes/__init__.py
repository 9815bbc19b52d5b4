"""The ``kubernetes`` deployment target: manifests, and a backend that applies them.

- ``options``: ``KubernetesOptions`` (namespace, context, image, resources, autoscaling, model
  source) and where a deployment's options are kept;
- ``manifests``: the Deployment, Service and HorizontalPodAutoscaler of a spec, as dicts;
- ``render``: the hub's part (the git URL pods clone) and ``modelhub manifests``'s YAML;
- ``status``: rollouts and replicas read from the API's status objects;
- ``backend``: ``KubernetesBackend``, through the official client (imported when used, so the
  manifests need no client library).
"""

from __future__ import annotations

from .backend import KubernetesBackend, connect
from .manifests import build_manifests, to_yaml
from .options import KubernetesOptions, OptionsStore
from .render import hub_git_url, render_manifests

__all__ = [
    "KubernetesBackend",
    "KubernetesOptions",
    "OptionsStore",
    "build_manifests",
    "connect",
    "hub_git_url",
    "render_manifests",
    "to_yaml",
]
