"""MLflow's scoring protocol (``POST /invocations``): request decoding and response encoding.

The JSON body holds exactly one of ``dataframe_split`` (``{"columns": [...], "data": [[...]]}``),
``dataframe_records`` (``[{"col": value}, ...]``), ``instances`` or ``inputs`` (rows as lists,
records, or ``{"col": [values]}``); a ``text/csv`` body has a header row. The answer is
``{"predictions": [...]}`` with the model's ``predict`` output, as ``mlflow models serve`` gives.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidRequest, UnsupportedMediaType
from .features import FeatureBatch, FeatureSchema, as_array, coerce_column
from .jsoncodec import dumps, loads

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"


def is_json(content_type: str | None) -> bool:
    """True when ``decode`` would read the body as JSON (a UTF-8 JSON or unspecified type)."""
    mime, params = _media_type(content_type)
    return mime in ("", JSON_TYPE, "*/*") and params.get("charset", "utf-8").lower() in (
        "utf-8",
        "utf8",
    )


def _some_rows(batch: FeatureBatch) -> FeatureBatch:
    if batch.n_rows == 0:
        raise InvalidRequest("body", "no rows to predict")
    return batch


class MlflowCodec:
    """Decoder and encoder of MLflow scoring requests for one served model."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self._index = schema.index()

    def decode(self, body: bytes, content_type: str | None) -> FeatureBatch:
        """Rows from a JSON or CSV body, validated against the model's signature."""
        mime, params = _media_type(content_type)
        charset = params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"Only UTF-8 bodies are read, not {charset}.")
        if mime in ("", JSON_TYPE, "*/*"):
            batch = self._json(body)
        elif mime == CSV_TYPE:
            batch = self._csv(body)
        else:
            raise UnsupportedMediaType(
                f"Content-Type {mime!r} is not read here; send {JSON_TYPE} (dataframe_split, "
                f"dataframe_records, instances or inputs) or {CSV_TYPE}."
            )
        return _some_rows(batch)

    def decode_parsed(self, doc: Any) -> FeatureBatch:
        """Rows from an already parsed JSON body (see ``is_json``)."""
        return _some_rows(self._doc(doc))

    def encode(self, predictions: np.ndarray) -> bytes:
        return dumps({"predictions": predictions})

    # -- JSON ---------------------------------------------------------------------------------------
    def _json(self, body: bytes) -> FeatureBatch:
        return self._doc(loads(body))

    def _doc(self, doc: Any) -> FeatureBatch:
        if not isinstance(doc, dict):
            raise InvalidRequest(
                "body", f"expected a JSON object with exactly one of {', '.join(FORMATS)}"
            )
        present = [k for k in FORMATS if k in doc]
        if len(present) != 1:
            raise InvalidRequest(
                "body",
                f"expected exactly one of {', '.join(FORMATS)}, got "
                f"{', '.join(sorted(map(str, doc))) or 'an empty object'}",
            )
        key = present[0]
        value = doc[key]
        if key == "dataframe_split":
            return self._split(value)
        if key == "dataframe_records":
            if not isinstance(value, list):
                raise InvalidRequest(key, "must be a list of records ({column: value} objects)")
            return self._records(value, key)
        # instances / inputs: rows, records, or a dict of columns
        if isinstance(value, dict):
            return self._column_dict(value, key)
        if not isinstance(value, list):
            raise InvalidRequest(key, "must be a list of rows or an object of columns")
        if value and isinstance(value[0], dict):
            return self._records(value, key)
        if value and not isinstance(value[0], list) and self.schema.width == 1:
            return self._columns_in_order([value], [key])
        return self._rows(value, None, key)

    def _split(self, split: Any) -> FeatureBatch:
        where = "dataframe_split"
        if not isinstance(split, dict):
            raise InvalidRequest(where, "must be an object with 'data' and optionally 'columns'")
        extra = set(split) - {"columns", "data", "index"}
        if extra:
            raise InvalidRequest(
                where, f"unexpected fields {sorted(extra)}; it takes columns, data and index"
            )
        if "data" not in split:
            raise InvalidRequest(f"{where}.data", "required: a list of rows")
        columns = split.get("columns")
        if columns is not None and (
            not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
        ):
            raise InvalidRequest(f"{where}.columns", "must be a list of column names")
        if not isinstance(split["data"], list):
            raise InvalidRequest(f"{where}.data", "must be a list of rows")
        return self._rows(split["data"], columns, f"{where}.data", f"{where}.columns")

    def _positions(self, columns: Sequence[str] | None, where: str) -> list[int]:
        """For each feature, its position among ``columns`` (positional when there are none)."""
        if columns is None:
            return list(range(self.schema.width))
        seen: dict[str, int] = {}
        for j, name in enumerate(columns):
            if name in seen and name in self._index:
                raise InvalidRequest(where, f"column '{name}' is given twice")
            seen.setdefault(name, j)
        positions = []
        for feature in self.schema.features:
            if feature.name not in seen:
                raise InvalidRequest(
                    where, f"missing feature '{feature.name}' ({self.schema.describe()})"
                )
            positions.append(seen[feature.name])
        return positions

    def _rows(
        self,
        rows: list[Any],
        columns: Sequence[str] | None,
        where: str,
        columns_where: str | None = None,
    ) -> FeatureBatch:
        positions = self._positions(columns, columns_where or where)
        width = len(columns) if columns is not None else self.schema.width
        for r, row in enumerate(rows):
            if not isinstance(row, list):
                raise InvalidRequest(
                    f"{where}[{r}]", f"expected a row (a list of {width} values), got {_kind(row)}"
                )
            if len(row) != width:
                raise InvalidRequest(
                    f"{where}[{r}]",
                    f"{len(row)} values, but {'the columns name' if columns else 'the model takes'} "
                    f"{width}" + ("" if columns else f" ({self.schema.describe()})"),
                )
        if not rows:
            return self._columns_in_order([[] for _ in positions], self.schema.names)
        if self.schema.layout == "matrix":
            array = as_array(rows, where)
            if array.ndim == 2 and array.dtype.kind in "iuf":
                if positions != list(range(array.shape[1])):
                    array = array[:, positions]
                return self.schema.from_matrix(array, where)
        names = self.schema.names
        return self._columns_in_order(
            [[row[j] for row in rows] for j in positions],
            [f"{where} column '{n}'" for n in names],
        )

    def _records(self, records: list[Any], where: str) -> FeatureBatch:
        names = self.schema.names
        values: list[list[Any]] = [[] for _ in names]
        for r, record in enumerate(records):
            if not isinstance(record, dict):
                raise InvalidRequest(
                    f"{where}[{r}]", f"expected a record object, got {_kind(record)}"
                )
            for j, name in enumerate(names):
                try:
                    value = record[name]
                except KeyError:
                    raise InvalidRequest(f"{where}[{r}]", f"missing feature '{name}'") from None
                if isinstance(value, (list, dict)):
                    raise InvalidRequest(
                        f"{where}[{r}].{name}",
                        f"expects one value, got a nested {type(value).__name__}",
                    )
                values[j].append(value)
        return self._columns_in_order(values, [f"{where} column '{n}'" for n in names])

    def _column_dict(self, data: dict[str, Any], where: str) -> FeatureBatch:
        columns, rows, first = [], None, ""
        for feature in self.schema.features:
            if feature.name not in data:
                raise InvalidRequest(
                    where, f"missing feature '{feature.name}' ({self.schema.describe()})"
                )
            value = data[feature.name]
            if not isinstance(value, list):
                value = [value]
            if rows is None:
                rows, first = len(value), feature.name
            elif len(value) != rows:
                raise InvalidRequest(
                    f"{where}.{feature.name}",
                    f"{len(value)} values but '{first}' has {rows}",
                )
            columns.append(value)
        return self._columns_in_order(columns, [f"{where}.{n}" for n in self.schema.names])

    def _columns_in_order(self, columns: Sequence[Any], wheres: Sequence[str]) -> FeatureBatch:
        arrays = [
            coerce_column(c, f, w)
            for c, f, w in zip(columns, self.schema.features, wheres, strict=True)
        ]
        return self.schema.from_columns(arrays, wheres)

    # -- CSV ----------------------------------------------------------------------------------------
    def _csv(self, body: bytes) -> FeatureBatch:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidRequest("body", "the CSV is not UTF-8 text") from None
        reader = csv.reader(io.StringIO(text))
        try:
            numbered = [(reader.line_num, row) for row in reader if row]
        except csv.Error as exc:
            raise InvalidRequest("body", f"invalid CSV ({exc})") from None
        if not numbered:
            raise InvalidRequest("body", "empty CSV; expected a header row and data rows")
        lines = [n for n, _ in numbered]
        rows = [row for _, row in numbered]
        header = [cell.strip() for cell in rows[0]]
        schema = self.schema
        if set(schema.names) <= set(header):
            positions = self._positions(header, "CSV header")
            data = rows[1:]
        elif len(header) == schema.width and _all_numbers(header):
            positions, data = list(range(schema.width)), rows
        elif len(header) == schema.width and schema.input_kind == "ndarray":
            positions, data = list(range(schema.width)), rows[1:]
        else:
            missing = next(n for n in schema.names if n not in header)
            raise InvalidRequest("CSV header", f"missing column '{missing}' ({schema.describe()})")
        width = len(header)
        skipped = len(rows) - len(data)
        for r, row in enumerate(data):
            if len(row) != width:
                raise InvalidRequest(
                    f"CSV line {lines[r + skipped]}",
                    f"{len(row)} cells, but the header has {width}",
                )
        columns = [np.array([row[j] for row in data], dtype=str) for j in positions]
        return self._columns_in_order(columns, [f"CSV column '{n}'" for n in schema.names])


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    parts = [p.strip() for p in content_type.split(";")]
    params = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return parts[0].lower(), params


def _all_numbers(cells: Sequence[str]) -> bool:
    try:
        for cell in cells:
            float(cell)
    except ValueError:
        return False
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
