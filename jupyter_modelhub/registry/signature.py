"""Inferring a model's signature (input columns, dtypes, shapes) from a sample input."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgument
from ..models import FeatureSpec, Signature


def _is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "dtypes")


def infer_signature(sample: Any, model: Any = None) -> Signature:
    """Describe ``sample`` (a pandas DataFrame or a numpy-like array) and, if it can, the output.

    The output is learned by calling ``model.predict`` on at most five rows; a model that
    fails on its own sample leaves the output unknown rather than failing the registration.
    """
    import numpy as np

    if _is_dataframe(sample):
        inputs = tuple(FeatureSpec(str(c), str(t)) for c, t in sample.dtypes.items())
        kind = "dataframe"
        shape: tuple[int, ...] = (-1, len(inputs))
        rows = sample.iloc[:5]
    else:
        try:
            array = np.asarray(sample)
        except Exception as exc:
            raise InvalidArgument(
                f"Cannot read a sample input of type {type(sample).__name__}: {exc}",
                hint="Pass a pandas DataFrame or a 2-D numpy array.",
            ) from exc
        if array.ndim == 0:
            raise InvalidArgument("The sample input is a scalar; pass rows of features.")
        names = getattr(model, "feature_names_in_", None)
        width = array.shape[1] if array.ndim > 1 else 1
        if names is None or len(names) != width:
            names = [f"f{i}" for i in range(width)]
        inputs = tuple(FeatureSpec(str(n), str(array.dtype)) for n in names)
        kind = "ndarray"
        shape = (-1, *array.shape[1:])
        rows = array[:5]
    outputs: tuple[FeatureSpec, ...] = ()
    output_shape: tuple[int, ...] = ()
    if model is not None and hasattr(model, "predict"):
        try:
            prediction = np.asarray(model.predict(rows))
            outputs = (FeatureSpec("prediction", str(prediction.dtype)),)
            output_shape = (-1, *prediction.shape[1:])
        except Exception:
            pass
    return Signature(inputs, kind, shape, outputs, output_shape)  # type: ignore[arg-type]
