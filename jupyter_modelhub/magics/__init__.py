"""The ``%modelhub`` line magic: the notebook twin of the ``modelhub`` command line.

Load it with ``%load_ext jupyter_modelhub``; then ``%modelhub --help`` lists the verbs.
"""

from __future__ import annotations

from typing import Any

from .core import ModelHubMagics
from .parser import MagicParser

__all__ = ["MagicParser", "ModelHubMagics", "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%modelhub`` magic with an IPython shell."""
    ipython.register_magics(ModelHubMagics)
