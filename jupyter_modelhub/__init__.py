"""jupyter-modelhub: register, deploy, A/B-test, monitor and roll back models from JupyterLab."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import lazy_exports

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0.dev0"

if TYPE_CHECKING:
    from .errors import ModelHubError
    from .hub import Hub

# ``import jupyter_modelhub.x`` runs this file first: importing Hub here would load the whole
# hub into every model server and supervisor process
__getattr__, __dir__ = lazy_exports(__name__, {"Hub": "hub", "ModelHubError": "errors"})

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
