"""Tornado handlers of the model server: parse, one ``ModelService`` call, answer.

``ServingHandler`` is the one base class. It gives every response an ``X-Request-Id`` (the
client's, or a new one), enforces the body size limit while the body streams in (``413``, not
tornado's bare ``400``), counts and times the request, and answers every error as JSON: a
``ModelHubError`` with its own status and message, anything else with a 500 whose details go
to the server's log only. Error bodies follow the protocol of the endpoint: ``{"error":
MESSAGE, "code": CODE}`` for the v2 protocol (what Triton's clients read) and everywhere else,
``{"error_code": ..., "message": ...}`` on MLflow's ``/invocations``.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tornado import web
from tornado.httputil import responses
from tornado.iostream import StreamClosedError

from ..errors import ModelHubError, NotFound
from ..serving.errors import InvalidRequest, NotReady, PayloadTooLarge
from ..serving.jsoncodec import dumps
from ..serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..serving.service import ModelService

log = logging.getLogger("jupyter_modelhub.modelserver")

try:  # not the package root: it names the adapters (magics, server) this layer must not import
    from .._version import __version__
except ImportError:  # pragma: no cover - a source tree that was never built
    __version__ = "0.0.0.dev0"

JSON_TYPE = "application/json"
CLIENT_CLOSED = 499  # nginx's status for a client that left before its answer
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, no spaces


@dataclass
class ServerState:
    """What every handler shares: the service, limits, and the draining flag."""

    service: ModelService
    max_body_bytes: int = 10 * 1024 * 1024
    openapi: dict[str, Any] = field(default_factory=dict)
    draining: bool = False
    in_flight: int = 0

    @property
    def hard_body_limit(self) -> int:
        """Bodies up to this size are read and discarded to answer 413 on a live connection;
        larger ones are refused before being read (and the connection is closed)."""
        return 2 * self.max_body_bytes + 1024 * 1024


@web.stream_request_body
class ServingHandler(web.RequestHandler):
    """Base handler: request id, body limit, metrics, JSON errors."""

    endpoint = "other"
    mlflow_errors = False

    def initialize(self, state: ServerState) -> None:
        self.state = state
        self.service = state.service
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._counted = False
        self._client_gone = False

    # -- life of a request ------------------------------------------------------------------------
    def prepare(self) -> None:
        self._started = time.perf_counter()
        self.state.in_flight += 1
        self.service.metrics.in_progress.inc()
        self._counted = True
        incoming = self.request.headers.get("X-Request-Id")
        self.request_id = (
            incoming if incoming and _REQUEST_ID.match(incoming) else self.service.new_request_id()
        )
        self.set_header("X-Request-Id", self.request_id)
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit():
            size = int(length)
            if size > self.state.hard_body_limit:
                raise self.too_large(size)
            if size > self.state.max_body_bytes:
                self._too_large = True
                self._set_max_body_size(size)
        else:
            self._set_max_body_size(self.state.hard_body_limit)

    def _set_max_body_size(self, size: int) -> None:
        setter = getattr(self.request.connection, "set_max_body_size", None)
        if setter is not None:  # HTTP/1 connections (all that tornado's HTTPServer makes)
            setter(size)

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._too_large or self._size > self.state.max_body_bytes:
            self._too_large = True
            self._chunks = []
            return
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        """The request body; raises ``PayloadTooLarge`` when it was over the limit.

        Tornado inflates gzip bodies itself; ``deflate`` (zlib, what tritonclient sends for
        ``request_compression_algorithm="deflate"``) is inflated here, within the same limit.
        """
        if self._too_large:
            raise self.too_large(self._size)
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        if self.request.headers.get("Content-Encoding", "").lower() == "deflate":
            data = self._inflate(data)
        return data

    def _inflate(self, data: bytes) -> bytes:
        limit = self.state.max_body_bytes
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise InvalidRequest(
                "body", f"Content-Encoding deflate, but not zlib data ({exc})"
            ) from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise self.too_large(len(out))
        return out

    def too_large(self, size: int) -> PayloadTooLarge:
        limit = self.state.max_body_bytes
        return PayloadTooLarge(
            f"body: {size} bytes is over this server's limit of {limit} bytes "
            f"({limit / 1048576:g} MB).",
            hint="Send fewer rows per request, or start the server with a larger --max-body-mb.",
        )

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Any:
        if self.state.draining and not self._headers_written:
            self.close_connection_after()  # the server is going away: no next request here
        return super().finish(chunk)

    def on_connection_close(self) -> None:
        self._client_gone = True
        super().on_connection_close()

    def on_finish(self) -> None:
        if not self._counted:
            return
        self._counted = False
        self.state.in_flight -= 1
        metrics = self.service.metrics
        metrics.in_progress.dec()
        status = CLIENT_CLOSED if self._client_gone else self.get_status()
        metrics.observe_request(self.endpoint, status, time.perf_counter() - self._started)

    def close_connection_after(self) -> None:
        """Answer this request with ``Connection: close`` and close the connection after it."""
        connection: Any = self.request.connection
        if hasattr(connection, "_disconnect_on_finish"):
            connection._disconnect_on_finish = True  # tornado adds the header itself
        else:  # pragma: no cover - another HTTP connection class
            self.set_header("Connection", "close")

    def set_default_headers(self) -> None:
        request_id = getattr(self, "request_id", None)
        if request_id:  # an error answer clears the headers: keep the id on it too
            self.set_header("X-Request-Id", request_id)

    def compute_etag(self) -> str | None:
        return None  # answers change with every request: hashing them would be wasted work

    def send_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(payload if isinstance(payload, bytes) else dumps(payload))

    # -- errors ---------------------------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ModelHubError):
            self.set_status(error.http_status)
            code, message = error.code, str(error)
        elif isinstance(error, web.HTTPError):
            message = error.log_message or error.reason or responses.get(status_code, "Error")
            if error.log_message and error.args:
                message = error.log_message % error.args
            code = _status_code(status_code)
        else:
            code = "INTERNAL_ERROR"
            message = (
                f"Unexpected server error ({type(error).__name__}); the model server's log "
                "has the details."
            )
        if self.mlflow_errors:
            body = {"error_code": _mlflow_code(self.get_status()), "message": message, "code": code}
        else:
            body = {"error": message, "code": code}
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(dumps(body))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A client's mistake is one debug line (the metrics count it); a bug a traceback."""
        if self._client_gone or isinstance(value, StreamClosedError):
            log.debug(
                "%s %s: the client closed the connection", self.request.method, self.request.uri
            )
            return
        if isinstance(value, ModelHubError) and value.http_status < 500:
            log.debug("%s %s -> %s", self.request.method, self.request.uri, value)
            return
        if isinstance(value, web.HTTPError) and value.status_code < 500:
            log.debug("%s %s -> %s", self.request.method, self.request.uri, value)
            return
        log.error(
            "%s %s (request %s) failed",
            self.request.method,
            self.request.uri,
            getattr(self, "request_id", "?"),
            exc_info=(typ, value, tb) if typ is not None else None,  # type: ignore[arg-type]
        )


def _status_code(status: int) -> str:
    return {
        400: "INVALID_REQUEST",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "PAYLOAD_TOO_LARGE",
    }.get(status, "INTERNAL_ERROR" if status >= 500 else "HTTP_ERROR")


def _mlflow_code(status: int) -> str:
    if status == 404:
        return "RESOURCE_DOES_NOT_EXIST"
    if status == 503:
        return "TEMPORARILY_UNAVAILABLE"
    return "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"


# -- Open Inference Protocol v2 ---------------------------------------------------------------------
class LiveHandler(ServingHandler):
    endpoint = "health"

    def get(self) -> None:
        self.send_json({"live": True})


class ReadyHandler(ServingHandler):
    endpoint = "health"

    def get(self) -> None:
        if self.state.draining:
            raise NotReady("The server is shutting down.")
        self.send_json({"ready": True})


class ServerMetadataHandler(ServingHandler):
    endpoint = "metadata"

    def get(self) -> None:
        self.send_json(
            {
                "name": "jupyter-modelhub",
                "version": __version__,
                "extensions": ["binary_tensor_data"],
            }
        )


class ModelMetadataHandler(ServingHandler):
    endpoint = "metadata"

    def get(self, name: str, version: str | None = None) -> None:
        self.service.check_model(name, version)
        self.send_json(self.service.v2.metadata())


class ModelReadyHandler(ServingHandler):
    endpoint = "health"

    def get(self, name: str, version: str | None = None) -> None:
        self.service.check_model(name, version)
        if self.state.draining:
            raise NotReady("The server is shutting down.")
        self.send_json({"name": self.service.name, "ready": True})


class ModelConfigHandler(ServingHandler):
    """Triton's ``/config`` (what ``tritonclient``'s ``get_model_config`` reads)."""

    endpoint = "metadata"

    def get(self, name: str, version: str | None = None) -> None:
        self.service.check_model(name, version)
        meta = self.service.v2.metadata()
        self.send_json(
            {
                "name": meta["name"],
                "platform": meta["platform"],
                "max_batch_size": 0,
                "input": [
                    {"name": i["name"], "data_type": f"TYPE_{i['datatype']}", "dims": i["shape"]}
                    for i in meta["inputs"]
                ],
                "output": [
                    {"name": o["name"], "data_type": f"TYPE_{o['datatype']}", "dims": o["shape"]}
                    for o in meta["outputs"]
                ],
            }
        )


class InferHandler(ServingHandler):
    endpoint = "v2_infer"

    async def post(self, name: str, version: str | None = None) -> None:
        service = self.service
        service.check_model(name, version)
        body = self.body
        request = service.v2.decode(
            body, self.request.headers.get("Inference-Header-Content-Length")
        )
        if request.id is not None and "X-Request-Id" not in self.request.headers:
            self.request_id = request.id if _REQUEST_ID.match(request.id) else self.request_id
            self.set_header("X-Request-Id", self.request_id)
        outputs = await service.predict(request.batch, request.outputs, self.request_id)
        payload, header_length = service.v2.encode(
            request, outputs, request.id if request.id is not None else self.request_id
        )
        if header_length is not None:
            self.set_header("Inference-Header-Content-Length", str(header_length))
            self.set_header("Content-Type", "application/octet-stream")
            self.finish(payload)
        else:
            self.send_json(payload)


# -- MLflow scoring ------------------------------------------------------------------------------------
class InvocationsHandler(ServingHandler):
    endpoint = "invocations"
    mlflow_errors = True

    async def post(self) -> None:
        service = self.service
        batch = service.mlflow.decode(self.body, self.request.headers.get("Content-Type"))
        primary = service.runtime.primary_output
        outputs = await service.predict(batch, (primary,), self.request_id)
        self.send_json(service.mlflow.encode(outputs[primary]))


class PingHandler(ServingHandler):
    """MLflow's ``/ping`` and ``/health``: 200 once the model is loaded."""

    endpoint = "health"

    def get(self) -> None:
        if self.state.draining:
            raise NotReady("The server is shutting down.")
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(b"\n")


# -- operations ---------------------------------------------------------------------------------------
class MetricsHandler(ServingHandler):
    endpoint = "metrics"

    def get(self) -> None:
        self.set_header("Content-Type", METRICS_CONTENT_TYPE)
        self.finish(self.service.metrics.exposition())


class OpenApiHandler(ServingHandler):
    endpoint = "metadata"

    def get(self) -> None:
        self.send_json(self.state.openapi)


class NotFoundHandler(ServingHandler):
    """Any other path: a JSON 404 that says what is served here."""

    def prepare(self) -> None:
        super().prepare()
        raise NotFound(
            f"No endpoint at {self.request.path}. This server serves /v2/models/"
            f"{self.service.name}/infer, /invocations, /metrics and /openapi.json."
        )
