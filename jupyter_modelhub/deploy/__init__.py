"""Deployments of model versions: desired states in git, backends that make them run.

- ``spec``: ``DeploymentSpec``, the desired state kept in ``deployments/NAME.yaml``;
- ``store``: reading and committing those files, and their revisions;
- ``backend``: the ``DeploymentBackend`` interface and the ``jupyter_modelhub.backends``
  entry points;
- ``local``, ``supervisor``, ``runtime``: the ``local`` target (supervised replica processes);
- ``service``: ``Deployments``, the verbs ``Hub`` delegates to.
"""

from __future__ import annotations

from .backend import ENTRY_POINT_GROUP, DeploymentBackend, backend_class, load_backend
from .records import DeploymentStatus, ReplicaStatus, Revision
from .service import Deployments
from .spec import DeploymentSpec

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
