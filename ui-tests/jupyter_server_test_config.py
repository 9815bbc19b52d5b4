"""Jupyter server configuration for the Galata UI tests.

Starts JupyterLab with Galata's test settings (no token, a temporary root folder) and points
the ModelHub server extension at a fresh, empty hub created in a temporary folder.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821

# Registration writes git commits and tags in the hub: give git an identity if it has none.
for variable, value in {
    "GIT_AUTHOR_NAME": "Galata",
    "GIT_AUTHOR_EMAIL": "galata@example.org",
    "GIT_COMMITTER_NAME": "Galata",
    "GIT_COMMITTER_EMAIL": "galata@example.org",
    "DVC_NO_ANALYTICS": "1",
}.items():
    os.environ.setdefault(variable, value)

_hub = Path(tempfile.mkdtemp(prefix="modelhub-galata-")) / "hub"
_cli = shutil.which("modelhub")
_command = [_cli] if _cli else [sys.executable, "-m", "jupyter_modelhub.cli"]
try:
    subprocess.run([*_command, "init", str(_hub)], check=True)
except (OSError, subprocess.CalledProcessError) as error:
    # A config file's exceptions are only logged: stop here rather than serve without a hub.
    sys.exit(f"ModelHub UI tests: could not create a hub with {_command} init: {error}")
os.environ["MODELHUB_HUB"] = str(_hub)
print(f"ModelHub UI tests: MODELHUB_HUB={_hub}", flush=True)
