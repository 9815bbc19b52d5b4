"""Serving a registered model version: the core of the model server, free of any web framework.

- ``loading``: resolve a reference, load its verified artifact into a runtime, self-test it;
- ``runtime``: scikit-learn (joblib) and ONNX (onnxruntime) runtimes with one output naming;
- ``features``: the model's input schema and batches of rows in the layout the runtime wants;
- ``v2`` / ``mlflow_scoring``: the Open Inference Protocol and MLflow scoring codecs;
- ``batching``: adaptive micro-batching on asyncio;
- ``metrics``: Prometheus metrics; ``predlog``: the sampled prediction log (Parquet);
- ``service``: ``ModelService``, all of the above for one model.

The HTTP adapter is ``jupyter_modelhub.modelserver``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_modelhub._lazy import lazy_exports

if TYPE_CHECKING:
    from .loading import ServedModel, load_served_model
    from .service import ModelService, ServingOptions

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ServedModel": "loading",
        "load_served_model": "loading",
        "ModelService": "service",
        "ServingOptions": "service",
    },
)

__all__ = ["ModelService", "ServedModel", "ServingOptions", "load_served_model"]
