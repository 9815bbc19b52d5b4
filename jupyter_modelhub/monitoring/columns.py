"""The boundary of the drift engine: user data in, plain numpy columns out.

Accepted inputs: a pandas DataFrame, a pyarrow Table, or a mapping of column name to a 1-D
array-like. Past this module every column is either

* a :class:`NumericalColumn`: ``float64`` values, NaN and infinities still in place (the
  engine drops and counts them), or
* a :class:`CategoricalColumn`: one ``int64`` code per row (``-1`` for a missing value) and the
  category labels as strings.

Kinds are inferred from dtypes: integers and floats are numerical; booleans, strings, objects and
pandas/Arrow categoricals are categorical. ``column_types`` overrides the inference (integer codes
that mean categories, say). Dates, times and complex numbers are refused with a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jupyter_modelhub.errors import InvalidArgument

ColumnKind = Literal["numerical", "categorical"]
NUMERICAL: ColumnKind = "numerical"
CATEGORICAL: ColumnKind = "categorical"
KINDS: tuple[ColumnKind, ...] = (NUMERICAL, CATEGORICAL)


@dataclass(frozen=True, eq=False)
class NumericalColumn:
    """A numerical column: float64 values, NaN/inf not yet removed."""

    name: str
    values: np.ndarray
    value_type: str  # "float" or "integer"
    kind: ColumnKind = NUMERICAL


@dataclass(frozen=True, eq=False)
class CategoricalColumn:
    """A categorical column as codes into ``categories`` (``-1`` marks a missing value)."""

    name: str
    codes: np.ndarray
    categories: tuple[str, ...]
    value_type: str  # "string", "boolean", "integer", "float" or "mixed"
    kind: ColumnKind = CATEGORICAL

    def counts(self) -> np.ndarray:
        """Rows per category (missing values not counted)."""
        codes = self.codes[self.codes >= 0]
        return np.bincount(codes, minlength=len(self.categories)).astype(np.int64)

    @property
    def n_missing(self) -> int:
        return int(np.count_nonzero(self.codes < 0))


Column = NumericalColumn | CategoricalColumn


def read_columns(
    data: Any,
    *,
    role: str,
    column_types: Mapping[str, str] | None = None,
) -> dict[str, Column]:
    """Split ``data`` into named numpy columns of a known kind.

    Args:
        data: a pandas DataFrame, a pyarrow Table or a mapping of name to 1-D array-like.
        role: "reference" or "current", used in error messages.
        column_types: optional ``{column: "numerical" | "categorical"}`` overrides.

    Raises:
        InvalidArgument: unsupported container, ragged columns, unsupported dtypes, a bad
            ``column_types`` entry.
    """
    overrides = dict(column_types or {})
    for name, kind in overrides.items():
        if kind not in KINDS:
            raise InvalidArgument(
                f"column_types[{name!r}] is {kind!r}.",
                hint="Use 'numerical' or 'categorical'.",
            )
    raw = _raw_columns(data, role)
    lengths = {len(v) for v in raw.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in raw.items())
        raise InvalidArgument(
            f"The {role} data's columns have different lengths ({sizes}).",
            hint="Pass a table whose columns all have one row per record.",
        )
    return {
        name: _to_column(name, values, overrides.get(name), role) for name, values in raw.items()
    }


def _raw_columns(data: Any, role: str) -> dict[str, Any]:
    """Name -> raw column (numpy array, pandas Series or pyarrow Array), container checked."""
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        if getattr(data.columns, "has_duplicates", False):
            raise InvalidArgument(
                f"The {role} DataFrame has duplicate column names.",
                hint="Rename the columns so that each name appears once.",
            )
        return {str(name): data[name] for name in data.columns}
    if isinstance(data, pa.Table):
        return {name: data.column(name).combine_chunks() for name in data.column_names}
    if isinstance(data, pa.RecordBatch):
        return {name: data.column(i) for i, name in enumerate(data.schema.names)}
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for name, values in data.items():
            if isinstance(values, (pa.Array, pa.ChunkedArray)):
                out[str(name)] = (
                    values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
                )
            elif type(values).__module__.startswith("pandas"):
                out[str(name)] = values
            else:
                array = np.asarray(values)
                if array.ndim != 1:
                    raise InvalidArgument(
                        f"The {role} column {name!r} has shape {array.shape}, not one value per row.",
                        hint="Pass 1-D arrays, one per column.",
                    )
                out[str(name)] = array
        return out
    raise InvalidArgument(
        f"The {role} data is a {type(data).__name__}.",
        hint="Pass a pandas DataFrame, a pyarrow Table or a dict of column name to 1-D array.",
    )


def _to_column(name: str, values: Any, override: str | None, role: str) -> Column:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _from_arrow(name, values, override, role)
    if type(values).__module__.startswith("pandas"):
        return _from_pandas(name, values, override, role)
    return _from_numpy(name, np.asarray(values), override, role)


def _unsupported(name: str, role: str, what: str) -> InvalidArgument:
    return InvalidArgument(
        f"The {role} column {name!r} holds {what}, which the drift tests cannot compare.",
        hint="Drop the column, or convert it to numbers or to category labels first.",
    )


def _from_numpy(name: str, array: np.ndarray, override: str | None, role: str) -> Column:
    kind = array.dtype.kind
    if kind in "iuf":
        if override == CATEGORICAL:
            return categorical_from_numbers(name, array)
        value_type = "float" if kind == "f" else "integer"
        return NumericalColumn(name, array.astype(np.float64, copy=False), value_type)
    if kind == "b":
        if override == NUMERICAL:
            return NumericalColumn(name, array.astype(np.float64), "integer")
        return categorical_from_numbers(name, array)
    if kind in "USO":
        if override == NUMERICAL:
            try:
                return NumericalColumn(name, array.astype(np.float64), "float")
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"The {role} column {name!r} is declared numerical but holds text.",
                    hint="Convert it to numbers first, or declare it 'categorical'.",
                ) from None
        return _categorical_from_objects(name, array, role)
    what = {"M": "dates/times", "m": "time differences", "c": "complex numbers"}.get(
        kind, f"values of dtype {array.dtype}"
    )
    raise _unsupported(name, role, what)


def categorical_from_numbers(name: str, array: np.ndarray) -> CategoricalColumn:
    """Categories from numbers or booleans (NaN is a missing value)."""
    value_type = {"b": "boolean", "f": "float"}.get(array.dtype.kind, "integer")
    codes = np.full(array.shape[0], -1, dtype=np.int64)
    present = ~np.isnan(array) if array.dtype.kind == "f" else np.ones(array.shape[0], bool)
    uniques, inverse = np.unique(array[present], return_inverse=True)
    codes[present] = inverse
    labels = tuple(_label(v) for v in uniques.tolist())
    return CategoricalColumn(name, codes, labels, value_type)


def _label(value: Any) -> str:
    """The label of a category value: ``2.0`` and ``2`` both read ``'2'``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _categorical_from_objects(name: str, array: np.ndarray, role: str) -> CategoricalColumn:
    try:
        arrow = pa.array(array, from_pandas=True)  # NaN and None become nulls
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed Python types (say str and int): compare their text; None/NaN stay missing.
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in array])
        text = np.where(missing, "", array.astype(str))
        arrow = pa.array(text, mask=missing)
        column = _from_arrow(name, arrow, CATEGORICAL, role)
        return CategoricalColumn(name, column.codes, column.categories, "mixed")  # type: ignore[union-attr]
    return _from_arrow(name, arrow, None, role)  # type: ignore[return-value]


def _from_arrow(name: str, array: Any, override: str | None, role: str) -> Column:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        if override == CATEGORICAL:
            return categorical_from_numbers(name, values)
        value_type = "float" if pa.types.is_floating(t) or pa.types.is_decimal(t) else "integer"
        return NumericalColumn(name, values, value_type)
    if pa.types.is_null(t):
        # An all-missing column: no category and no number; it is counted as missing.
        return CategoricalColumn(name, np.full(len(array), -1, np.int64), (), "mixed")
    if pa.types.is_dictionary(t):
        if override == NUMERICAL:
            return _from_arrow(name, array.cast(t.value_type), override, role)
        return _dictionary(name, array, _value_type(t.value_type))
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        if override == NUMERICAL:
            try:
                return NumericalColumn(
                    name, pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), "float"
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InvalidArgument(
                    f"The {role} column {name!r} is declared numerical but holds text.",
                    hint="Convert it to numbers first, or declare it 'categorical'.",
                ) from None
        return _dictionary(name, pc.dictionary_encode(array), _value_type(t))
    raise _unsupported(name, role, f"Arrow type {t}")


def _value_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return "mixed"


def _dictionary(name: str, array: pa.DictionaryArray, value_type: str) -> CategoricalColumn:
    """Codes and labels of a dictionary array; unused labels are dropped."""
    indices = array.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    labels = [_label(v) for v in array.dictionary.to_pylist()]
    used = np.zeros(len(labels), dtype=bool)
    used[indices[indices >= 0]] = True
    if not used.all():
        remap = np.cumsum(used) - 1
        indices = np.where(indices >= 0, remap[np.maximum(indices, 0)], -1)
        labels = [label for label, keep in zip(labels, used, strict=True) if keep]
    if len(set(labels)) != len(labels):  # e.g. 2 and 2.0 in one column: merge them
        unique = sorted(set(labels))
        position = {label: i for i, label in enumerate(unique)}
        mapping = np.array([position[label] for label in labels], dtype=np.int64)
        indices = np.where(indices >= 0, mapping[np.maximum(indices, 0)], -1)
        labels = unique
    return CategoricalColumn(name, indices, tuple(labels), value_type)


def _from_pandas(name: str, series: Any, override: str | None, role: str) -> Column:
    dtype = series.dtype
    dtype_name = str(dtype)
    if dtype_name == "category":  # pandas.Categorical: Arrow keeps it as a dictionary
        return _from_arrow(name, pa.array(series, from_pandas=True), override, role)
    kind = getattr(dtype, "kind", "O")
    if kind in "iuf":
        # numpy dtypes and pandas' nullable Int64/Float64 (pd.NA becomes NaN)
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if override == CATEGORICAL:
            return categorical_from_numbers(name, values)
        return NumericalColumn(name, values, "float" if kind == "f" else "integer")
    if kind == "b" and dtype_name != "bool":  # pandas' nullable "boolean"
        return _from_arrow(name, pa.array(series, from_pandas=True), override, role)
    if dtype_name == "bool":
        return _from_numpy(name, series.to_numpy(), override, role)
    if kind in "OSU" or dtype_name in ("str", "string"):
        if override != NUMERICAL:
            try:  # Arrow-backed strings convert without copying; objects in one C pass
                return _from_arrow(name, pa.array(series, from_pandas=True), override, role)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass  # mixed Python types: handled below
        return _from_numpy(name, series.to_numpy(dtype=object), override, role)
    return _from_numpy(name, series.to_numpy(), override, role)
