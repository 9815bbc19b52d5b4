"""JSON in and out of the server: orjson when it is installed (it comes with DVC), else ``json``.

``dumps`` returns bytes and writes numpy arrays without a Python-list detour where it can.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .errors import InvalidRequest

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency of dvc-data
    orjson = None  # type: ignore[assignment]

if orjson is not None:
    _OPTIONS = orjson.OPT_SERIALIZE_NUMPY

    def _default(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        raise TypeError

    def dumps(value: Any) -> bytes:
        """Serialise ``value`` (dicts, lists, numpy arrays and scalars) to UTF-8 JSON."""
        return orjson.dumps(value, default=_default, option=_OPTIONS)

    def _loads(data: bytes | str) -> Any:
        return orjson.loads(data)

    _DECODE_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
else:  # pragma: no cover

    class _Encoder(json.JSONEncoder):
        def default(self, o: Any) -> Any:
            if isinstance(o, np.ndarray):
                return o.tolist()
            if isinstance(o, np.generic):
                return o.item()
            if isinstance(o, bytes):
                return o.decode("utf-8", "replace")
            return super().default(o)

    def dumps(value: Any) -> bytes:
        return json.dumps(value, cls=_Encoder, allow_nan=False, separators=(",", ":")).encode()

    def _loads(data: bytes | str) -> Any:
        return json.loads(data)

    _DECODE_ERRORS = (ValueError,)


def loads(data: bytes | str, where: str = "body") -> Any:
    """Parse JSON, or raise ``InvalidRequest`` that says where the syntax breaks."""
    if not data:
        raise InvalidRequest(where, "empty body; expected a JSON document")
    try:
        return _loads(data)
    except _DECODE_ERRORS as exc:
        raise InvalidRequest(where, f"invalid JSON ({exc})") from None
    except RecursionError:
        raise InvalidRequest(where, "invalid JSON (nested too deeply)") from None
