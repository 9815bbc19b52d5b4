"""Runtimes: how a loaded model turns a ``FeatureBatch`` into named output arrays.

Both runtimes name their outputs the same way, so a client sees the same answer whichever runs:
``predict`` (labels or values, one per row) and, for classifiers, ``predict_proba`` (one row of
class probabilities per input row). MLflow's ``predictions`` are the ``predict`` output.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .errors import ModelLoadError
from .features import FeatureBatch, FeatureSchema

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"


@dataclass(frozen=True)
class OutputSpec:
    """One output tensor: name, numpy dtype, and shape with -1 for the batch dimension."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]


class ModelRuntime(ABC):
    """A model ready to predict, with the schema of what it takes and the outputs it gives."""

    name: ClassVar[str]
    #: micro-batching default (rows per model call); 1 turns batching off
    default_max_batch_size: ClassVar[int]

    def __init__(self, schema: FeatureSchema, output_names: tuple[str, ...]) -> None:
        self.schema = schema
        self.output_names = output_names
        self.outputs: tuple[OutputSpec, ...] = ()

    @property
    def primary_output(self) -> str:
        return self.output_names[0]

    @abstractmethod
    def predict(self, batch: FeatureBatch, outputs: Collection[str]) -> dict[str, np.ndarray]:
        """The requested ``outputs`` (a subset of ``output_names``) for every row of ``batch``."""

    def describe_outputs(self, sample: dict[str, np.ndarray]) -> None:
        """Record dtype and per-row shape of each output, from a prediction on a sample."""
        self.outputs = tuple(
            OutputSpec(name, sample[name].dtype, (-1, *sample[name].shape[1:]))
            for name in self.output_names
        )


class SklearnRuntime(ModelRuntime):
    """A scikit-learn estimator (or any object with ``predict``) loaded with joblib."""

    name = "sklearn"
    # Measured (20 features, 8-32 connections): one call for many rows cuts the server's CPU per
    # request 2-4x (~100-250 µs per predict on an array, ~1 ms on a DataFrame).
    default_max_batch_size = 32

    def __init__(self, model: Any, schema: FeatureSchema) -> None:
        if not callable(getattr(model, "predict", None)):
            raise ModelLoadError(
                f"The model ({type(model).__name__}) has no predict method: nothing to serve."
            )
        names = (PREDICT, PREDICT_PROBA) if _has_predict_proba(model) else (PREDICT,)
        super().__init__(schema, names)
        self.model = model
        self._frame = schema.input_kind == "dataframe"
        if self._frame:
            import pandas as pd

            self._pd = pd

    def _input(self, batch: FeatureBatch) -> Any:
        names = self.schema.names
        if self._frame:
            if batch.matrix is not None:
                return self._pd.DataFrame(batch.matrix, columns=names, copy=False)
            assert batch.columns is not None
            return self._pd.DataFrame(dict(zip(names, batch.columns, strict=True)), copy=False)
        if batch.matrix is not None:
            return batch.matrix
        assert batch.columns is not None
        return np.column_stack(batch.columns)

    def predict(self, batch: FeatureBatch, outputs: Collection[str]) -> dict[str, np.ndarray]:
        x = self._input(batch)
        result: dict[str, np.ndarray] = {}
        if PREDICT in outputs:
            result[PREDICT] = np.asarray(self.model.predict(x))
        if PREDICT_PROBA in outputs:
            result[PREDICT_PROBA] = np.asarray(self.model.predict_proba(x))
        return result


def _has_predict_proba(model: Any) -> bool:
    try:
        return callable(getattr(model, "predict_proba", None))
    except Exception:  # some estimators raise from the attribute when it does not apply
        return False


_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}
# skl2onnx's names for a classifier's and a regressor's outputs (zipmap=False)
_SKL2ONNX_OUTPUTS = {"label": PREDICT, "probabilities": PREDICT_PROBA, "variable": PREDICT}


class OnnxRuntime(ModelRuntime):
    """An ONNX model run by onnxruntime on the CPU, one thread (a replica is one core)."""

    name = "onnx"
    # onnxruntime costs ~5 µs per call: measured over HTTP (20 features, 1/8/32 connections),
    # batching changed neither throughput (~4,000 req/s at 32) nor CPU per request (~210 µs),
    # so the request calls the model directly, without the batcher's future and loop turn.
    default_max_batch_size = 1

    def __init__(self, session: Any, schema: FeatureSchema) -> None:
        self.session = session
        inputs = session.get_inputs()
        self._input_names = [i.name for i in inputs]
        self._input_types = [_ORT_TYPES.get(i.type) for i in inputs]
        if len(inputs) == 1:
            self._per_feature = False
            dtype = self._input_types[0]
            if dtype is None or dtype is np.object_:
                raise ModelLoadError(
                    f"The ONNX model's input {inputs[0].name!r} has type {inputs[0].type}; "
                    "the server feeds ONNX models numeric tensors."
                )
            if schema.layout != "matrix":
                raise ModelLoadError(
                    "The ONNX model takes one numeric tensor but the signature has "
                    f"non-numeric features ({schema.describe()}).",
                    hint="Serve it with runtime='sklearn'.",
                )
        elif set(self._input_names) == set(schema.names):
            self._per_feature = True
        else:
            raise ModelLoadError(
                f"The ONNX model has inputs {self._input_names}; the server feeds one tensor "
                "[rows, features] or one tensor per feature named like the signature's features "
                f"({schema.describe()})."
            )
        self._onnx_names = [o.name for o in session.get_outputs()]
        converted = all(n in _SKL2ONNX_OUTPUTS for n in self._onnx_names) and len(
            {_SKL2ONNX_OUTPUTS[n] for n in self._onnx_names}
        ) == len(self._onnx_names)
        self._rename = (
            {n: _SKL2ONNX_OUTPUTS[n] for n in self._onnx_names}
            if converted
            else {n: n for n in self._onnx_names}
        )
        names = tuple(self._rename[n] for n in self._onnx_names)
        if converted:
            names = tuple(sorted(names, key=lambda n: n != PREDICT))
        super().__init__(schema, names)
        self._by_output = {self._rename[n]: n for n in self._onnx_names}

    def _feed(self, batch: FeatureBatch) -> dict[str, np.ndarray]:
        if not self._per_feature:
            assert batch.matrix is not None
            return {self._input_names[0]: batch.matrix.astype(self._input_types[0], copy=False)}
        index = self.schema.index()
        feed = {}
        for name, dtype in zip(self._input_names, self._input_types, strict=True):
            column = batch.column(index[name])
            feed[name] = column.astype(dtype or column.dtype, copy=False).reshape(-1, 1)
        return feed

    def predict(self, batch: FeatureBatch, outputs: Collection[str]) -> dict[str, np.ndarray]:
        wanted = [self._by_output[n] for n in self.output_names if n in outputs]
        values = self.session.run(wanted, self._feed(batch))
        result = {}
        for onnx_name, value in zip(wanted, values, strict=True):
            name = self._rename[onnx_name]
            array = np.asarray(value)
            if name == PREDICT and array.ndim == 2 and array.shape[1] == 1:
                array = array[:, 0]  # a regressor's [N, 1] is sklearn's [N]
            result[name] = array
        return result


def onnx_session(data: bytes) -> Any:
    """An onnxruntime session on the CPU, single-threaded and without spinning threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        data, sess_options=options, providers=["CPUExecutionProvider"]
    )
