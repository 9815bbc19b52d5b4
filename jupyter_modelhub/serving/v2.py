"""The Open Inference Protocol (KServe v2) REST format: request decoding, response encoding.

Requests carry either one tensor ``[rows, features]`` (any name, ``input`` by convention) or one
tensor per feature named like the signature's features (``[rows]`` or ``[rows, 1]``; ``BYTES``
for strings). Triton's binary tensor extension is supported both ways (its clients use it by
default): a JSON header of ``Inference-Header-Content-Length`` bytes followed by raw tensors.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidRequest
from .features import FeatureBatch, FeatureSchema, as_array
from .jsoncodec import dumps, loads
from .runtime import ModelRuntime, OutputSpec

DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
MATRIX_INPUT = "input"
_LENGTH = struct.Struct("<I")


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The protocol's datatype name for a numpy dtype (strings and objects are ``BYTES``)."""
    kind = dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{dtype.itemsize * 8}"
    if kind == "f":
        return f"FP{dtype.itemsize * 8}"
    return "BYTES"


@dataclass(frozen=True)
class V2Request:
    """A decoded inference request: its id, rows, and which outputs it wants, how."""

    id: str | None
    batch: FeatureBatch
    outputs: tuple[str, ...]
    binary_outputs: frozenset[str]


class V2Codec:
    """Decoder and encoder for one served model, built once at start-up."""

    def __init__(self, runtime: ModelRuntime, model_name: str, model_version: str) -> None:
        self.schema: FeatureSchema = runtime.schema
        self.output_names = runtime.output_names
        self.output_specs: tuple[OutputSpec, ...] = runtime.outputs
        self.model_name = model_name
        self.model_version = model_version
        self.platform = "onnxruntime_onnx" if runtime.name == "onnx" else "sklearn"
        self._index = self.schema.index()
        self._all_outputs = tuple(self.output_names)

    # -- metadata ---------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """``GET /v2/models/{name}``: the model's name, versions, platform, inputs and outputs."""
        schema = self.schema
        if schema.layout == "matrix":
            inputs = [
                {
                    "name": MATRIX_INPUT,
                    "datatype": v2_datatype(schema.matrix_dtype),
                    "shape": [-1, schema.width],
                }
            ]
        else:
            inputs = [
                {"name": f.name, "datatype": v2_datatype(f.numpy_dtype), "shape": [-1]}
                for f in schema.features
            ]
        return {
            "name": self.model_name,
            "versions": [self.model_version],
            "platform": self.platform,
            "inputs": inputs,
            "outputs": [
                {"name": o.name, "datatype": v2_datatype(o.dtype), "shape": list(o.shape)}
                for o in self.output_specs
            ],
            "parameters": {
                "input_kind": schema.input_kind,
                "features": [{"name": f.name, "dtype": f.dtype} for f in schema.features],
            },
        }

    # -- requests ---------------------------------------------------------------------------------
    def decode(self, body: bytes, header_length: str | None = None) -> V2Request:
        """Parse and validate an ``infer`` body against the protocol and the model's signature."""
        return self.decode_parsed(*parse_body(body, header_length))

    def decode_parsed(self, doc: Any, binary: bytes = b"") -> V2Request:
        """Validate a parsed ``infer`` body (``parse_body``) against the model's signature."""
        if not isinstance(doc, dict):
            raise InvalidRequest("body", "expected a JSON object with an 'inputs' list")
        request_id = doc.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise InvalidRequest("id", "must be a string")
        parameters = _object(doc.get("parameters"), "parameters")
        inputs = doc.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidRequest("inputs", "required: a non-empty list of input tensors")
        tensors, used = [], 0
        for i, tensor in enumerate(inputs):
            name, array, datatype, used = self._tensor(tensor, i, binary, used)
            tensors.append((name, array, datatype, f"inputs[{i}]"))
        if used != len(binary):
            raise InvalidRequest(
                "body",
                f"{len(binary) - used} bytes of binary data follow the JSON header but no "
                "input's binary_data_size accounts for them",
            )
        batch = self._features(tensors)
        if batch.n_rows == 0:
            raise InvalidRequest("inputs[0].shape", "the batch has no rows")
        outputs, binary_outputs = self._outputs(doc.get("outputs"), parameters)
        return V2Request(request_id, batch, outputs, binary_outputs)

    def _tensor(
        self, tensor: Any, i: int, binary: bytes, used: int
    ) -> tuple[str, np.ndarray, str, int]:
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise InvalidRequest(where, "must be an object with name, shape, datatype and data")
        name = tensor.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{where}.name", "required: the tensor's name")
        shape = tensor.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise InvalidRequest(
                f"{where}.shape", f"required: a list of non-negative integers, got {shape!r}"
            )
        datatype = tensor.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise InvalidRequest(
                f"{where}.datatype",
                f"must be one of {', '.join(DATATYPES)}, got {datatype!r}",
            )
        params = _object(tensor.get("parameters"), f"{where}.parameters")
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidRequest(
                    f"{where}.parameters.binary_data_size", "must be a non-negative integer"
                )
            if used + size > len(binary):
                raise InvalidRequest(
                    f"{where}.parameters.binary_data_size",
                    f"{size} bytes, but only {len(binary) - used} bytes of binary data remain",
                )
            array = _binary_tensor(binary[used : used + size], datatype, where)
            used += size
        elif "data" not in tensor:
            raise InvalidRequest(f"{where}.data", "required: the tensor's values")
        else:
            array = _json_tensor(tensor["data"], datatype, f"{where}.data")
        expected = math.prod(shape)
        if array.size != expected:
            raise InvalidRequest(
                f"{where}.shape",
                f"{shape} holds {expected} values but '{name}' has {array.size}",
            )
        return name, array.reshape(shape), datatype, used

    def _features(self, tensors: list[tuple[str, np.ndarray, str, str]]) -> FeatureBatch:
        schema = self.schema
        if len(tensors) == 1 and (tensors[0][0] not in self._index or schema.width == 1):
            name, array, datatype, where = tensors[0]
            if array.ndim == 1 and schema.width == 1:
                array = array.reshape(-1, 1)
            if array.ndim != 2 or array.shape[1] != schema.width:
                raise InvalidRequest(
                    f"{where}.shape",
                    f"{list(array.shape)} does not match the model's input [-1, {schema.width}] "
                    f"({schema.describe()}); or send one tensor per feature",
                )
            if datatype == "BYTES" and schema.layout == "matrix":
                raise InvalidRequest(
                    f"{where}.datatype",
                    f"BYTES, but the model takes numbers: send {v2_datatype(schema.matrix_dtype)}",
                )
            return schema.from_matrix(array, f"{where} ('{name}')")
        by_name: dict[str, tuple[np.ndarray, str, str]] = {}
        rows: int | None = None
        first = ""
        for name, array, datatype, where in tensors:
            if name not in self._index:
                raise InvalidRequest(
                    f"{where}.name",
                    f"'{name}' is not a feature of this model ({schema.describe()})",
                )
            if name in by_name:
                raise InvalidRequest(f"{where}.name", f"'{name}' is given twice")
            if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
                raise InvalidRequest(
                    f"{where}.shape",
                    f"feature '{name}' takes one value per row: shape [N] or [N, 1], "
                    f"got {list(array.shape)}",
                )
            if rows is None:
                rows, first = array.shape[0], name
            elif array.shape[0] != rows:
                raise InvalidRequest(
                    f"{where}.shape",
                    f"'{name}' has {array.shape[0]} rows but '{first}' has {rows}",
                )
            by_name[name] = (array.reshape(-1), datatype, where)
        columns, wheres = [], []
        for feature in schema.features:
            if feature.name not in by_name:
                raise InvalidRequest("inputs", f"missing input for feature '{feature.name}'")
            array, datatype, where = by_name[feature.name]
            if (datatype == "BYTES") != (feature.kind == "str"):
                wanted = "BYTES" if feature.kind == "str" else v2_datatype(feature.numpy_dtype)
                raise InvalidRequest(
                    f"{where}.datatype",
                    f"{datatype}, but feature '{feature.name}' ({feature.dtype}) takes "
                    f"{'strings' if feature.kind == 'str' else 'numbers'}: send {wanted}",
                )
            columns.append(array)
            wheres.append(f"{where} ('{feature.name}')")
        return schema.from_columns(columns, wheres)

    def _outputs(
        self, requested: Any, parameters: dict[str, Any]
    ) -> tuple[tuple[str, ...], frozenset[str]]:
        binary_default = parameters.get("binary_data_output") is True
        if requested is None:
            names = self._all_outputs
            return names, frozenset(names) if binary_default else frozenset()
        if not isinstance(requested, list) or not requested:
            raise InvalidRequest("outputs", "must be a non-empty list of {name} objects")
        names_list, binary = [], set()
        for i, item in enumerate(requested):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise InvalidRequest(f"outputs[{i}]", "must be an object with a 'name'")
            name = item["name"]
            if name not in self.output_names:
                raise InvalidRequest(
                    f"outputs[{i}].name",
                    f"unknown output '{name}'; this model has {', '.join(self.output_names)}",
                )
            params = _object(item.get("parameters"), f"outputs[{i}].parameters")
            if params.get("binary_data", binary_default) is True:
                binary.add(name)
            if name not in names_list:
                names_list.append(name)
        return tuple(names_list), frozenset(binary)

    # -- responses ---------------------------------------------------------------------------------
    def encode(
        self, request: V2Request, outputs: dict[str, np.ndarray], response_id: str
    ) -> tuple[bytes, int | None]:
        """The response body and, when some outputs are binary, the JSON header's length."""
        tensors: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        for name in request.outputs:
            array = _plain(outputs[name])
            datatype = v2_datatype(array.dtype)
            tensor: dict[str, Any] = {
                "name": name,
                "datatype": datatype,
                "shape": list(array.shape),
            }
            if name in request.binary_outputs:
                blob = _binary_bytes(array, datatype)
                tensor["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            elif array.dtype.kind in "biuf":
                flat = np.ascontiguousarray(array).reshape(-1)
                tensor["data"] = flat.astype(np.float32) if flat.dtype == np.float16 else flat
            else:
                tensor["data"] = [_text(v) for v in array.reshape(-1).tolist()]
            tensors.append(tensor)
        head = dumps(
            {
                "model_name": self.model_name,
                "model_version": self.model_version,
                "id": response_id,
                "outputs": tensors,
            }
        )
        if not blobs:
            return head, None
        return head + b"".join(blobs), len(head)


def parse_body(body: bytes, header_length: str | None = None) -> tuple[Any, bytes]:
    """The JSON document of an ``infer`` body and the binary tensor data after it (Triton's
    binary extension: ``Inference-Header-Content-Length`` is the JSON part's size)."""
    binary = b""
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            size = -1
        if not 0 <= size <= len(body):
            raise InvalidRequest(
                "Inference-Header-Content-Length",
                f"must be the JSON header's size in bytes (0 to {len(body)}), got "
                f"{header_length!r}",
            )
        body, binary = body[:size], body[size:]
    return loads(body), binary


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(where, "must be a JSON object")
    return value


def _json_tensor(data: Any, datatype: str, where: str) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    array = as_array(data, where)
    kind = array.dtype.kind
    if datatype == "BYTES":
        if kind == "U":
            return array
        if kind == "O" and all(isinstance(v, str) for v in array.reshape(-1)):
            return array
        raise InvalidRequest(where, "BYTES values must be strings")
    if array.size == 0:
        return array.astype(DATATYPES[datatype])
    if datatype == "BOOL":
        if kind != "b":
            raise InvalidRequest(where, f"BOOL values must be true or false, got {_words(kind)}")
        return array
    target = np.dtype(DATATYPES[datatype])
    allowed = "iu" if target.kind in "iu" else "iuf"
    if kind not in allowed:
        wanted = "integers" if target.kind in "iu" else "numbers"
        raise InvalidRequest(where, f"{datatype} values must be {wanted}, got {_words(kind)}")
    if target.kind in "iu":
        info = np.iinfo(target)
        if int(array.min()) < info.min or int(array.max()) > info.max:
            raise InvalidRequest(where, f"values out of range for {datatype}")
    return array.astype(target, copy=False)


def _binary_tensor(chunk: bytes, datatype: str, where: str) -> np.ndarray:
    if datatype == "BYTES":
        values, offset = [], 0
        while offset < len(chunk):
            if offset + 4 > len(chunk):
                raise InvalidRequest(where, "truncated BYTES element length")
            (length,) = _LENGTH.unpack_from(chunk, offset)
            offset += 4
            if offset + length > len(chunk):
                raise InvalidRequest(where, "a BYTES element runs past binary_data_size")
            try:
                values.append(chunk[offset : offset + length].decode("utf-8"))
            except UnicodeDecodeError:
                raise InvalidRequest(where, "BYTES elements must be UTF-8 text") from None
            offset += length
        return np.array(values, dtype=object)
    dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
    if len(chunk) % dtype.itemsize:
        raise InvalidRequest(
            f"{where}.parameters.binary_data_size",
            f"{len(chunk)} is not a multiple of {datatype}'s {dtype.itemsize} bytes",
        )
    return np.frombuffer(chunk, dtype=dtype)


def _binary_bytes(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(_LENGTH.pack(len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _plain(array: np.ndarray) -> np.ndarray:
    """Object arrays of numbers (labels kept as Python ints) become numeric arrays."""
    if array.dtype.kind == "O" and array.size:
        converted = np.asarray(array.tolist())
        if converted.dtype.kind in "biuf":
            return converted
    return array


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _words(kind: str) -> str:
    return {
        "f": "numbers",
        "i": "integers",
        "u": "integers",
        "b": "booleans",
        "U": "strings",
        "O": "mixed or null values",
    }.get(kind, "other values")
