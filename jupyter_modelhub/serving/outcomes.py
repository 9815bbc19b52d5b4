"""Outcomes posted back to a model server (``POST /feedback``), logged for A/B analysis.

A client that learns what happened after a prediction (a conversion, a click, whether the
prediction was right, revenue) posts it with the request id the server returned
(``X-Request-Id`` and the v2 response's ``id``) or with the request's sticky key::

    {"request_id": "3f2a...-17", "outcome": 1}
    {"key": "user-42", "outcome": 12.5}
    [{"request_id": "...", "outcome": 0}, ...]            (up to 1,000 at once)

Binary outcomes are 0/1 or true/false; numeric ones any finite number. Outcomes are written
as Parquet chunks (``timestamp``, ``request_id``, ``key``, ``outcome``) in the ``feedback``
folder of the server's log folder; the A/B report joins them to the logged predictions, which
carry the variant that answered each request.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .errors import InvalidRequest
from .predlog import ChunkedLog

MAX_ITEMS = 1000
FEEDBACK_FOLDER = "feedback"

Outcome = tuple[str | None, str | None, float]  # (request_id, key, outcome)


def parse_feedback(doc: Any) -> list[Outcome]:
    """The outcomes of a feedback body (one object or a list of them), validated.

    Raises:
        InvalidRequest: naming the item and field at fault.
    """
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise InvalidRequest("body", "no outcomes: send {request_id or key, outcome}")
    if len(items) > MAX_ITEMS:
        raise InvalidRequest("body", f"{len(items)} outcomes; send at most {MAX_ITEMS} at once")
    out: list[Outcome] = []
    for i, item in enumerate(items):
        where = f"[{i}]" if isinstance(doc, list) else ""
        if not isinstance(item, dict):
            raise InvalidRequest(where or "body", "expected an object {request_id or key, outcome}")
        unknown = sorted(set(item) - {"request_id", "key", "outcome"})
        if unknown:
            raise InvalidRequest(
                f"{where}{unknown[0]}", "unknown field; the fields are request_id, key, outcome"
            )
        request_id, key = item.get("request_id"), item.get("key")
        for name, value in (("request_id", request_id), ("key", key)):
            if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
                raise InvalidRequest(f"{where}{name}", "must be a non-empty string")
        if request_id is None and key is None:
            raise InvalidRequest(
                where or "body", "give the request_id the server returned, or the sticky key"
            )
        outcome = item.get("outcome")
        if isinstance(outcome, bool):
            outcome = float(outcome)
        if not isinstance(outcome, (int, float)) or not math.isfinite(outcome):
            raise InvalidRequest(
                f"{where}outcome", f"must be a finite number or true/false, got {outcome!r}"
            )
        out.append((request_id, key, float(outcome)))
    return out


class FeedbackLog(ChunkedLog[Outcome]):
    """Outcomes buffered in memory and written as Parquet chunks by a background thread."""

    thread_name = "modelhub-feedback"

    def __init__(self, folder: str | os.PathLike[str], **options: Any) -> None:
        options.setdefault("flush_rows", 1000)
        options.setdefault("flush_seconds", 1.0)
        super().__init__(folder, **options)

    def record(self, outcomes: list[Outcome]) -> int:
        """Buffer ``outcomes``; how many were kept (the rest: buffer full)."""
        return sum(self.append(item, 1) for item in outcomes)

    def _table(self, buffered: list[tuple[float, Outcome, int]]) -> Any:
        import pyarrow as pa

        return pa.table(
            {
                "timestamp": pa.array(
                    np.array([int(t * 1_000_000) for t, _, _ in buffered], dtype=np.int64),
                    type=pa.timestamp("us", tz="UTC"),
                ),
                "request_id": pa.array([e[0] for _, e, _ in buffered], type=pa.string()),
                "key": pa.array([e[1] for _, e, _ in buffered], type=pa.string()),
                "outcome": pa.array([e[2] for _, e, _ in buffered], type=pa.float64()),
            }
        )
