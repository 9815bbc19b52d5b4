"""The Jupyter server extension: the REST API the JupyterLab sidebar calls.

Enable it with ``jupyter server extension enable jupyter_modelhub`` (installing the package does
this). Choose the hub with ``c.ModelHubApp.hub_path``; by default it is ``$MODELHUB_HUB``, else
``~/modelhub``. The hub is opened per request, so one created after the server started is
picked up without a restart.
"""

from __future__ import annotations

from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from ..hub import HUB_ENV, default_hub_path
from .handlers import API_PREFIX, routes

__all__ = ["API_PREFIX", "ModelHubApp"]


class ModelHubApp(ExtensionApp):
    """Serves ``/modelhub/api/...`` from the Jupyter server."""

    name = "jupyter_modelhub"
    load_other_extensions = True

    hub_path = Unicode(
        "",
        help=f"""Folder of the model hub the REST API serves.

        Empty (the default) means ${HUB_ENV} if set, else ~/modelhub. A relative path is taken
        relative to the folder the server was started in.""",
    ).tag(config=True)

    def hub_location(self) -> Path:
        """The folder of the hub, whether or not a hub exists there yet."""
        return Path(self.hub_path).expanduser() if self.hub_path else default_hub_path()

    def initialize_settings(self) -> None:
        self.log.info("jupyter-modelhub: REST API serves the hub at %s", self.hub_location())

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes())
