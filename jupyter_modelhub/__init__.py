"""jupyter-modelhub: register, deploy, A/B-test, monitor and roll back models from JupyterLab."""

from __future__ import annotations

from typing import Any

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0.dev0"

from .errors import ModelHubError
from .hub import Hub

__all__ = ["Hub", "ModelHubError", "__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-modelhub"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server import ModelHubApp

    return [{"module": "jupyter_modelhub", "app": ModelHubApp}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_modelhub`` registers the ``%modelhub`` magic."""
    from .magics import load_ipython_extension as load

    load(ipython)
