"""Deployments of model versions: desired states in git, backends that make them run.

- ``spec``: ``DeploymentSpec``, the desired state kept in ``deployments/NAME.yaml``;
- ``store``: reading and committing those files, and their revisions;
- ``backend``: the ``DeploymentBackend`` interface and the ``jupyter_modelhub.backends``
  entry points;
- ``local``, ``supervisor``, ``runtime``: the ``local`` target (supervised replica processes);
- ``service``: ``Deployments``, the verbs ``Hub`` delegates to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_modelhub._lazy import lazy_exports

if TYPE_CHECKING:
    from .backend import ENTRY_POINT_GROUP, DeploymentBackend, backend_class, load_backend
    from .records import DeploymentStatus, ReplicaStatus, Revision
    from .service import Deployments
    from .spec import DeploymentSpec

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ENTRY_POINT_GROUP": "backend",
        "DeploymentBackend": "backend",
        "backend_class": "backend",
        "load_backend": "backend",
        "DeploymentStatus": "records",
        "ReplicaStatus": "records",
        "Revision": "records",
        "Deployments": "service",
        "DeploymentSpec": "spec",
    },
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "DeploymentBackend",
    "DeploymentSpec",
    "DeploymentStatus",
    "Deployments",
    "ReplicaStatus",
    "Revision",
    "backend_class",
    "load_backend",
]
