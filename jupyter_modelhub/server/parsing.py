"""Reading what a REST request sends: its JSON body, typed fields, and paths of server files.

Everything here only checks the shape of the input (JSON types, where a path points). What the
values mean (name rules, versions, metrics) is the domain's business, checked by ``Hub``.
Every failure is an ``InvalidArgument``, so the handlers answer it with a 400.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InvalidArgument

T = TypeVar("T")

_KINDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    list: "an array",
}


def json_object(raw: bytes, allowed: Iterable[str]) -> dict[str, Any]:
    """Decode a request body that must be a JSON object with only ``allowed`` keys.

    Raises:
        InvalidArgument: the body is empty, not JSON, not an object, or has unknown keys.
    """
    allowed = list(allowed)
    example = ", ".join(repr(key) for key in allowed)
    if not raw.strip():
        raise InvalidArgument(
            "The request has no body.", hint=f"Send a JSON object with the fields {example}."
        )
    try:
        body = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidArgument(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise InvalidArgument(
            f"The request body must be a JSON object, not {_json_kind(body)}.",
            hint=f"Send an object with the fields {example}.",
        )
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"Unknown field(s) in the request body: {', '.join(map(repr, unknown))}.",
            hint=f"The fields are {example}.",
        )
    return body


def field(body: dict[str, Any], key: str, kind: type[T], *, required: bool = False) -> T | None:
    """The value of ``key`` if it has the JSON type ``kind``; ``None`` when absent or null.

    A required string must also be non-empty.

    Raises:
        InvalidArgument: a required field is missing, or a field has the wrong type.
    """
    value = body.get(key)
    if value is None or (required and value == ""):
        if required:
            raise InvalidArgument(f"The field {key!r} is required.")
        return None
    # bool is an int in Python, but true is not a number in JSON (nor a number a bool).
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidArgument(
            f"The field {key!r} must be {_KINDS.get(kind, kind.__name__)}, not {_json_kind(value)}."
        )
    return value


def query_int(value: str | None, key: str, *, default: int) -> int:
    """An integer query argument such as ``?tail=50``, at least 0; ``default`` when absent."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidArgument(f"The query argument {key}={value!r} must be a whole number >= 0.")
    return number


def query_float(value: str | None, key: str, *, default: float) -> float:
    """A number query argument such as ``?alpha=0.01``; ``default`` when absent."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgument(f"The query argument {key}={value!r} must be a number.") from None
    if not math.isfinite(number):
        raise InvalidArgument(f"The query argument {key}={value!r} must be a finite number.")
    return number


def query_bool(value: str | None, key: str, *, default: bool) -> bool:
    """A yes/no query argument such as ``?higher_is_better=false``; ``default`` when absent."""
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"The query argument {key}={value!r} must be true or false.")


def number(body: dict[str, Any], key: str) -> float | None:
    """A JSON number (an integer or not); ``None`` when absent or null."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"The field {key!r} must be a number, not {_json_kind(value)}.")
    return value


def number_map(
    body: dict[str, Any], key: str, *, nullable: bool = False
) -> dict[str, float] | None:
    """An object of numbers, such as ``metrics``: ``{"auc": 0.91}`` (with ``nullable``, a
    value may also be null, as a guardrail that is not checked)."""
    values = field(body, key, dict)
    if values is None:
        return None
    for name, value in values.items():
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(
                f"The field {key!r} must map names to numbers; {name!r} is {_json_kind(value)}."
            )
    return values


def string_list(body: dict[str, Any], key: str) -> list[str] | None:
    """An array of strings, such as ``labels``."""
    values = field(body, key, list)
    if values is None:
        return None
    for value in values:
        if not isinstance(value, str):
            raise InvalidArgument(
                f"The field {key!r} must be an array of strings; it holds {_json_kind(value)}."
            )
    return values


def path_in_root(root_dir: str | Path, requested: str) -> Path:
    """The absolute path of a file or folder given relative to the server's root directory.

    The root directory is what the user sees in JupyterLab's file browser. A path that leads
    out of it (``..``, an absolute path elsewhere, a symbolic link pointing out) is refused,
    and so is the root directory itself. Whether the path exists is for the domain to say.

    Raises:
        InvalidArgument: the path is outside the root directory, or is the root itself.
    """
    root = Path(root_dir).resolve()
    hint = "Give a file or folder relative to the root of JupyterLab's file browser, e.g. 'models/model.joblib'."
    if "\x00" in requested:
        raise InvalidArgument(f"The path {requested!r} contains a NUL character.", hint=hint)
    try:
        target = (root / requested).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise InvalidArgument(f"The path {requested!r} cannot be resolved: {exc}.") from exc
    if target == root:
        raise InvalidArgument(
            f"The path {requested!r} is the Jupyter server's root directory itself.", hint=hint
        )
    if not target.is_relative_to(root):
        raise InvalidArgument(
            f"The path {requested!r} is outside the Jupyter server's root directory.", hint=hint
        )
    return target


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
