"""What a served model takes: its features, and batches of rows in the layout it wants.

A ``FeatureSchema`` is built once per served model from the registered signature (or, without
one, from the model itself). Every decoder turns a request into a ``FeatureBatch`` in the
schema's layout, so that batches of several requests concatenate without conversion:

- ``matrix``: one 2-D numpy array ``(rows, features)`` of one numeric dtype; used when every
  feature is a number (the common case, and the cheap one);
- ``columns``: one 1-D array per feature, each with its own dtype (strings, booleans, mixed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..models import FeatureSpec, Signature
from .errors import InvalidRequest

Kind = Literal["float", "int", "bool", "str"]
Layout = Literal["matrix", "columns"]


def feature_kind(dtype: str) -> Kind:
    """The kind of value a feature holds, from its registered numpy/pandas dtype name."""
    name = dtype.lower()
    if name.startswith(("float", "double", "half")):
        return "float"
    if name.startswith(("int", "uint")):
        return "int"
    if name in ("bool", "boolean"):
        return "bool"
    return "str"


_KIND_DTYPES: dict[Kind, Any] = {
    "float": np.float64,
    "int": np.int64,
    "bool": np.bool_,
    "str": np.object_,
}
_KIND_WORDS: dict[Kind, str] = {
    "float": "numbers",
    "int": "integers",
    "bool": "booleans",
    "str": "strings",
}


@dataclass(frozen=True)
class Feature:
    """One input column: its name, registered dtype and the kind of value it takes."""

    name: str
    dtype: str
    kind: Kind

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        if self.kind == "float" and self.dtype.lower() in ("float32", "float16"):
            return np.dtype(self.dtype.lower())
        return np.dtype(_KIND_DTYPES[self.kind])


@dataclass(frozen=True)
class FeatureSchema:
    """The features of a served model and the layout its runtime wants them in."""

    features: tuple[Feature, ...]
    input_kind: Literal["dataframe", "ndarray"]
    layout: Layout
    matrix_dtype: np.dtype[Any]

    @classmethod
    def build(
        cls,
        specs: Sequence[FeatureSpec],
        input_kind: Literal["dataframe", "ndarray"],
        matrix_dtype: Any = None,
    ) -> FeatureSchema:
        """A schema for ``specs``; ``matrix_dtype`` forces the matrix dtype (ONNX wants float32)."""
        features = tuple(Feature(s.name, s.dtype, feature_kind(s.dtype)) for s in specs)
        numeric = all(f.kind in ("float", "int") for f in features)
        if matrix_dtype is not None and numeric:
            dtype = np.dtype(matrix_dtype)
        elif numeric:
            dtypes = {f.numpy_dtype for f in features}
            dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
        else:
            dtype = np.dtype(np.object_)
        layout: Layout = "matrix" if numeric else "columns"
        return cls(features, input_kind, layout, dtype)

    @classmethod
    def from_signature(cls, signature: Signature, matrix_dtype: Any = None) -> FeatureSchema:
        return cls.build(signature.inputs, signature.input_kind, matrix_dtype)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def width(self) -> int:
        return len(self.features)

    def index(self) -> dict[str, int]:
        return {f.name: i for i, f in enumerate(self.features)}

    def describe(self) -> str:
        """``4 features: a, b, c, d`` (shortened for wide models), for error messages."""
        names = self.names
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return f"{len(names)} feature{'s' if len(names) != 1 else ''}: {shown}"

    # -- building batches ------------------------------------------------------------------------
    def from_matrix(self, matrix: np.ndarray, where: str) -> FeatureBatch:
        """A batch from a 2-D array ``(rows, features)`` in the schema's feature order."""
        if matrix.ndim != 2 or matrix.shape[1] != self.width:
            raise InvalidRequest(
                where,
                f"shape {list(matrix.shape)} does not match the model's input "
                f"[-1, {self.width}] ({self.describe()})",
            )
        if self.layout == "matrix":
            return FeatureBatch(self._matrix(matrix, where), None)
        columns = tuple(
            coerce_column(matrix[:, j], f, f"{where} column {j} ('{f.name}')")
            for j, f in enumerate(self.features)
        )
        return FeatureBatch(None, columns)

    def from_columns(self, columns: Sequence[np.ndarray], where: Sequence[str]) -> FeatureBatch:
        """A batch from one 1-D array per feature, in the schema's feature order."""
        coerced = [
            coerce_column(c, f, w) for c, f, w in zip(columns, self.features, where, strict=True)
        ]
        if self.layout == "columns":
            return FeatureBatch(None, tuple(coerced))
        if not coerced:
            return FeatureBatch(np.empty((0, 0), self.matrix_dtype), None)
        matrix = np.empty((len(coerced[0]), self.width), dtype=self.matrix_dtype)
        for j, column in enumerate(coerced):
            matrix[:, j] = column
        return FeatureBatch(matrix, None)

    def _matrix(self, matrix: np.ndarray, where: str) -> np.ndarray:
        kind = matrix.dtype.kind
        if kind in "iuf" or kind == "b":
            if matrix.dtype == self.matrix_dtype:
                return matrix
            if self.matrix_dtype.kind in "iu" and kind == "f":
                _check_integral(matrix, where)
            return matrix.astype(self.matrix_dtype)
        # strings or mixed objects: convert column by column, each with its own message
        out = np.empty(matrix.shape, dtype=self.matrix_dtype)
        for j, f in enumerate(self.features):
            out[:, j] = coerce_column(matrix[:, j], f, f"{where} column {j} ('{f.name}')")
        return out

    def zero_batch(self) -> FeatureBatch:
        """One row of zeros (empty strings, False): the self-test input."""
        if self.layout == "matrix":
            return FeatureBatch(np.zeros((1, self.width), dtype=self.matrix_dtype), None)
        zeros = {"float": 0.0, "int": 0, "bool": False, "str": ""}
        columns = tuple(np.array([zeros[f.kind]], dtype=f.numpy_dtype) for f in self.features)
        return FeatureBatch(None, columns)


@dataclass(frozen=True)
class FeatureBatch:
    """Rows of features in a schema's layout: exactly one of ``matrix`` and ``columns`` is set."""

    matrix: np.ndarray | None
    columns: tuple[np.ndarray, ...] | None

    @property
    def n_rows(self) -> int:
        if self.matrix is not None:
            return int(self.matrix.shape[0])
        assert self.columns is not None
        return len(self.columns[0]) if self.columns else 0

    def column(self, j: int) -> np.ndarray:
        if self.matrix is not None:
            return self.matrix[:, j]
        assert self.columns is not None
        return self.columns[j]

    @staticmethod
    def concat(batches: Sequence[FeatureBatch]) -> FeatureBatch:
        """One batch with the rows of ``batches`` in order (all in the same layout)."""
        if len(batches) == 1:
            return batches[0]
        if batches[0].matrix is not None:
            return FeatureBatch(np.concatenate([b.matrix for b in batches]), None)  # type: ignore[misc,unused-ignore]
        width = len(batches[0].columns or ())
        return FeatureBatch(
            None,
            tuple(np.concatenate([b.columns[j] for b in batches]) for j in range(width)),  # type: ignore[index]
        )

    def take(self, start: int, stop: int) -> FeatureBatch:
        if self.matrix is not None:
            return FeatureBatch(self.matrix[start:stop], None)
        assert self.columns is not None
        return FeatureBatch(None, tuple(c[start:stop] for c in self.columns))


# -- one column ------------------------------------------------------------------------------------
def as_array(values: Any, where: str) -> np.ndarray:
    """``np.asarray`` of JSON values, with a 4xx for ragged or nested lists."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(where, f"not a regular array of values ({_first_line(exc)})") from exc
    return array


def coerce_column(values: Any, feature: Feature, where: str) -> np.ndarray:
    """A 1-D array of ``feature``'s dtype from decoded values, or a 4xx that names ``where``.

    Numbers are accepted for float features (``null`` is a missing value, NaN); integral numbers
    for int features; booleans or 0/1 for bool features; strings for string features (numbers
    pass through unchanged there, as pandas would keep them).
    """
    array = values if isinstance(values, np.ndarray) else as_array(values, where)
    if array.ndim != 1:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        else:
            raise InvalidRequest(
                where, f"expected one value per row, got shape {list(array.shape)}"
            )
    kind = array.dtype.kind
    target = feature.kind
    if target == "str":
        if kind == "O":
            _reject_containers(array, where)
            return array
        return array.astype(object)
    if kind == "O":
        return _coerce_objects(array, feature, where)
    if kind in "US":
        return _parse_strings(array, feature, where)
    if target == "float":
        if kind in "iufb":
            return array.astype(feature.numpy_dtype, copy=False)
    elif target == "int":
        if kind in "iub":
            return array.astype(np.int64, copy=False)
        if kind == "f":
            _check_integral(array, where)
            return array.astype(np.int64)
    elif target == "bool":
        if kind == "b":
            return array
        if kind in "iuf":
            if not np.isin(array, (0, 1)).all():
                raise InvalidRequest(where, "expects booleans (true/false or 0/1)")
            return array.astype(bool)
    raise InvalidRequest(where, f"expects {_KIND_WORDS[target]}, got {_dtype_words(array)}")


def _coerce_objects(array: np.ndarray, feature: Feature, where: str) -> np.ndarray:
    """Mixed JSON values (numbers with nulls, strings, lists) for a numeric or bool feature."""
    target = feature.kind
    for value in array:
        if isinstance(value, (str, bytes)):
            raise InvalidRequest(
                where, f"expects {_KIND_WORDS[target]}, got the string {_short(value)}"
            )
        if isinstance(value, (list, dict)):
            raise InvalidRequest(
                where, f"expects {_KIND_WORDS[target]}, got a nested {type(value).__name__}"
            )
    if target == "bool":
        if any(v is None for v in array):
            raise InvalidRequest(where, "expects booleans, got null")
        return coerce_column(array.astype(np.float64), feature, where)
    # None is a missing value: NaN (int features become float so that the model sees NaN)
    try:
        floats = array.astype(np.float64)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(where, f"expects {_KIND_WORDS[target]} ({_first_line(exc)})") from exc
    if target == "int" and not np.isnan(floats).any():
        _check_integral(floats, where)
        return floats.astype(np.int64)
    return floats.astype(feature.numpy_dtype) if target == "float" else floats


def _parse_strings(array: np.ndarray, feature: Feature, where: str) -> np.ndarray:
    """Text values (a CSV cell, a BYTES tensor) for a numeric or bool feature."""
    if feature.kind == "bool":
        lowered = np.char.lower(np.char.strip(array.astype(str)))
        truthy = np.isin(lowered, ("true", "1", "yes"))
        falsy = np.isin(lowered, ("false", "0", "no"))
        if not (truthy | falsy).all():
            bad = array[~(truthy | falsy)][0]
            raise InvalidRequest(where, f"expects booleans, got {_short(bad)}")
        return truthy
    text = np.char.strip(array.astype(str))
    text = np.where(text == "", "nan", text)
    try:
        floats = text.astype(np.float64)
    except ValueError:
        for value in text:
            try:
                float(value)
            except ValueError:
                raise InvalidRequest(
                    where, f"expects {_KIND_WORDS[feature.kind]}, got {_short(value)}"
                ) from None
        raise  # pragma: no cover - numpy and float() disagree
    if feature.kind == "int" and not np.isnan(floats).any():
        _check_integral(floats, where)
        return floats.astype(np.int64)
    return floats.astype(feature.numpy_dtype) if feature.kind == "float" else floats


def _check_integral(array: np.ndarray, where: str) -> None:
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(array) & (np.floor(array) == array)
    if not ok.all():
        raise InvalidRequest(where, f"expects integers, got {_short(array[~ok].flat[0])}")


def _reject_containers(array: np.ndarray, where: str) -> None:
    for value in array:
        if isinstance(value, (list, dict)):
            raise InvalidRequest(where, f"expects strings, got a nested {type(value).__name__}")


def _dtype_words(array: np.ndarray) -> str:
    kind = array.dtype.kind
    return {
        "f": "numbers",
        "i": "integers",
        "u": "integers",
        "b": "booleans",
        "U": "strings",
        "S": "bytes",
    }.get(kind, str(array.dtype))


def _short(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
