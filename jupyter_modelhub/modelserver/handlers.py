"""Tornado handlers of the model server's metadata, health and operations routes.

The two prediction routes are served by ``exchange.PredictionExchange`` without a
``RequestHandler``; both follow the rules written once here: every response carries an
``X-Request-Id`` (the client's, or a new one), every request is counted and timed, and every
error is answered as JSON: a ``ModelHubError`` with its own status and message, anything else
with a 500 whose details go to the server's log only. Error bodies follow the protocol of the
endpoint: ``{"error": MESSAGE, "code": CODE}`` for the v2 protocol (what Triton's clients read)
and everywhere else, ``{"error_code": ..., "message": ...}`` on MLflow's ``/invocations``.
"""

from __future__ import annotations

import hmac
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
from ..experiments.policy import TrafficPolicy
from ..serving.errors import InvalidRequest, NotReady, PayloadTooLarge
from ..serving.jsoncodec import dumps, loads
from ..serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..serving.outcomes import FeedbackLog, parse_feedback
from ..serving.service import ModelService
from ..serving.traffic import TrafficRouter

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
    """What every handler shares: the variants and their router, limits, the draining flag.

    ``service`` is the champion: what metadata and health routes describe.
    """

    router: TrafficRouter
    max_body_bytes: int = 10 * 1024 * 1024
    openapi: dict[str, Any] = field(default_factory=dict)
    feedback: FeedbackLog | None = None
    admin_token: str | None = None
    draining: bool = False
    in_flight: int = 0

    @property
    def service(self) -> ModelService:
        return self.router.champion

    @property
    def hard_body_limit(self) -> int:
        """Bodies up to this size are read and discarded to answer 413 on a live connection;
        larger ones are refused before being read (and the connection is closed)."""
        return 2 * self.max_body_bytes + 1024 * 1024


def is_request_id(value: str | None) -> bool:
    """True for a usable request id: 1 to 200 visible ASCII characters."""
    return value is not None and _REQUEST_ID.match(value) is not None


def choose_request_id(incoming: str | None, service: ModelService) -> str:
    """The client's ``X-Request-Id`` when it is a sane token, else a new one."""
    return incoming if incoming and _REQUEST_ID.match(incoming) else service.new_request_id()


def payload_too_large(size: int, limit: int) -> PayloadTooLarge:
    """The 413 for a body of ``size`` bytes over ``limit``."""
    return PayloadTooLarge(
        f"body: {size} bytes is over this server's limit of {limit} bytes "
        f"({limit / 1048576:g} MB).",
        hint="Send fewer rows per request, or start the server with a larger --max-body-mb.",
    )


def inflate(data: bytes, limit: int) -> bytes:
    """A ``Content-Encoding: deflate`` body (zlib, what tritonclient sends for
    ``request_compression_algorithm="deflate"``) inflated within ``limit`` bytes.

    Tornado inflates gzip bodies itself (``decompress_request``).
    """
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidRequest(
            "body", f"Content-Encoding deflate, but not zlib data ({exc})"
        ) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise payload_too_large(len(out), limit)
    return out


def error_body(error: BaseException | None, status_code: int, mlflow: bool) -> tuple[int, bytes]:
    """The status and JSON body that answer ``error`` (None: a bare ``status_code``)."""
    if isinstance(error, ModelHubError):
        status_code, code, message = error.http_status, error.code, str(error)
    elif isinstance(error, web.HTTPError):
        message = error.log_message or error.reason or responses.get(status_code, "Error")
        if error.log_message and error.args:
            message = error.log_message % error.args
        code = _status_code(status_code)
    elif error is None:
        code, message = _status_code(status_code), responses.get(status_code, "Error")
    else:
        code = "INTERNAL_ERROR"
        message = (
            f"Unexpected server error ({type(error).__name__}); the model server's log "
            "has the details."
        )
    if mlflow:
        body = {"error_code": _mlflow_code(status_code), "message": message, "code": code}
    else:
        body = {"error": message, "code": code}
    return status_code, dumps(body)


def log_failure(
    method: str, uri: str, request_id: str, error: BaseException | None, client_gone: bool
) -> None:
    """A client's mistake is one debug line (the metrics count it); a bug a traceback."""
    if client_gone or isinstance(error, StreamClosedError):
        log.debug("%s %s: the client closed the connection", method, uri)
    elif (isinstance(error, ModelHubError) and error.http_status < 500) or (
        isinstance(error, web.HTTPError) and error.status_code < 500
    ):
        log.debug("%s %s -> %s", method, uri, error)
    else:
        log.error(
            "%s %s (request %s) failed",
            method,
            uri,
            request_id,
            exc_info=(type(error), error, error.__traceback__) if error is not None else None,
        )


def disconnect_after_response(connection: Any) -> None:
    """Answer the current request with ``Connection: close`` and close the connection after."""
    if hasattr(connection, "_disconnect_on_finish"):
        connection._disconnect_on_finish = True  # tornado adds the header itself
    else:  # pragma: no cover - another HTTP connection class
        raise AssertionError("not a tornado HTTP/1 connection")


def log_access(status: int, method: str, uri: str, seconds: float) -> None:
    """Access log at debug level (``--log-level debug``): metrics count every request anyway."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%d %s %s %.2fms", status, method, uri, 1000.0 * seconds)


class ServingHandler(web.RequestHandler):
    """Base handler: request id, metrics, JSON errors."""

    endpoint = "other"
    mlflow_errors = False

    def initialize(self, state: ServerState) -> None:
        self.state = state
        self.service = state.service
        self._counted = False
        self._client_gone = False

    # -- life of a request ------------------------------------------------------------------------
    def prepare(self) -> None:
        self._started = time.perf_counter()
        self.state.in_flight += 1
        self.service.metrics.in_progress.inc()
        self._counted = True
        self.request_id = choose_request_id(self.request.headers.get("X-Request-Id"), self.service)
        self.set_header("X-Request-Id", self.request_id)

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
        disconnect_after_response(self.request.connection)

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
        status, body = error_body(error, status_code, self.mlflow_errors)
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(body)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        log_failure(
            self.request.method or "?",
            self.request.uri or "?",
            getattr(self, "request_id", "?"),
            value,
            self._client_gone,
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


class PredictionRouteHandler(ServingHandler):
    """``/v2/models/{name}/infer`` and ``/invocations`` for methods other than POST (a 405):
    POST itself is answered by ``exchange.PredictionExchange`` before routing."""

    endpoint = "other"


class FeedbackHandler(ServingHandler):
    """``POST /feedback`` (and ``/v2/models/{name}/feedback``): outcomes for A/B analysis."""

    endpoint = "other"

    def post(self, name: str | None = None, version: str | None = None) -> None:
        if name is not None:
            self.service.check_model(name, version)
        outcomes = parse_feedback(loads(self.request.body))
        if self.state.feedback is None:
            raise NotReady(
                "This server keeps no logs, so it cannot record outcomes.",
                hint="Serve with --log-dir (deployments always have one).",
            )
        kept = self.state.feedback.record(outcomes)
        self.send_json({"accepted": kept, "dropped": len(outcomes) - kept})


class AdminTrafficHandler(ServingHandler):
    """``GET``/``PUT /admin/traffic`` on the admin listener only: the policy in force, and a
    new one applied at once (how a supervisor switches traffic without restarting replicas).

    Changing it takes ``Authorization: Bearer $MODELHUB_ADMIN_TOKEN`` (the token the
    supervisor gave the process in its environment); without a token set, nothing changes it.
    """

    endpoint = "other"

    def get(self) -> None:
        self.send_json(self.state.router.describe())

    def put(self) -> None:
        token = self.state.admin_token
        given = self.request.headers.get("Authorization", "")
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise web.HTTPError(403, "a valid admin token is required")
        doc = loads(self.request.body)
        self.state.router.update(TrafficPolicy.from_dict(doc) if doc is not None else None)
        self.send_json(self.state.router.describe())


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
