"""The model server: a tornado adapter over ``jupyter_modelhub.serving``.

Run it with ``python -m jupyter_modelhub.modelserver REF --hub PATH`` or call :func:`serve`.
It answers the Open Inference Protocol v2 (``/v2/...``), MLflow scoring (``/invocations``),
Prometheus (``/metrics``) and describes itself at ``/openapi.json``.
"""

from __future__ import annotations

from .process import (
    EXIT_LISTEN_FAILED,
    EXIT_LOAD_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    FAILED,
    READY,
    ModelServer,
    serve,
)

__all__ = [
    "EXIT_LISTEN_FAILED",
    "EXIT_LOAD_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FAILED",
    "READY",
    "ModelServer",
    "serve",
]
