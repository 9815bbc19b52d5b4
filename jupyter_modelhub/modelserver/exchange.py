"""The prediction routes served without tornado's ``RequestHandler``.

``POST /v2/models/{name}[/versions/{v}]/infer`` and ``POST /invocations`` are nearly all of a
model server's traffic, and a ``RequestHandler`` costs more per request than the model does
here: constant JSON from a ``RequestHandler`` took 150 us of server CPU per request, from an
``HTTPMessageDelegate`` writing to the connection 80 us (``benchmarks/bench_serving.py``'s
machine). So ``ModelServerApplication`` answers those two routes with a ``PredictionExchange``
that talks to tornado's HTTP/1 connection directly; every other route, and any other method,
goes through the application's router and handlers as usual.

The rules are the handlers' (request ids, the body limit and its 413, JSON error bodies in the
endpoint's protocol, metrics, ``Connection: close`` while draining): ``handlers`` writes each
once and both paths call it.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from typing import Any
from urllib.parse import unquote

from tornado import httputil, web

from ..experiments.policy import CHAMPION, KEY_HEADER, VARIANT_HEADER
from ..serving.features import FeatureBatch
from ..serving.jsoncodec import loads
from ..serving.mlflow_scoring import is_json
from ..serving.service import ModelService, Outputs
from ..serving.traffic import key_from_mlflow, key_from_v2, shadow_copy
from ..serving.v2 import parse_body
from .handlers import (
    CLIENT_CLOSED,
    JSON_TYPE,
    ServerState,
    choose_request_id,
    disconnect_after_response,
    error_body,
    inflate,
    is_request_id,
    log_access,
    log_failure,
    payload_too_large,
)

# (rows, outputs wanted, request id, the decoded v2 request or None for MLflow's scoring)
_Request = tuple[FeatureBatch, tuple[str, ...], str, Any]
_INFER = re.compile(r"/v2/models/([^/?]+)(?:/versions/([^/?]+))?/infer")
_OK = httputil.ResponseStartLine("HTTP/1.1", 200, "OK")


class ModelServerApplication(web.Application):
    """The model server's application: prediction requests skip the router and handlers."""

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return PredictionExchange(self, server_conn, request_conn)


class PredictionExchange(httputil.HTTPMessageDelegate):
    """One request on one connection: a prediction answered here, or handed to the router."""

    __slots__ = (
        "app",
        "chunks",
        "client_gone",
        "connection",
        "done",
        "fallback",
        "headers",
        "method",
        "model",
        "request_id",
        "server_conn",
        "size",
        "started",
        "state",
        "too_large",
        "uri",
        "v2",
        "version",
    )

    def __init__(
        self, app: web.Application, server_conn: object, connection: httputil.HTTPConnection
    ) -> None:
        self.app = app
        self.server_conn = server_conn
        self.connection = connection
        self.fallback: httputil.HTTPMessageDelegate | None = None
        self.done = True  # until a prediction request is recognised

    # -- tornado's HTTPMessageDelegate ------------------------------------------------------------
    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        assert isinstance(start_line, httputil.RequestStartLine)
        path = start_line.path.partition("?")[0]
        match = _INFER.fullmatch(path) if start_line.method == "POST" else None
        if match is None and not (start_line.method == "POST" and path == "/invocations"):
            self.fallback = web.Application.start_request(
                self.app, self.server_conn, self.connection
            )
            return self.fallback.headers_received(start_line, headers)
        state: ServerState = self.app.settings["modelhub_state"]
        self.state = state
        self.method = start_line.method
        self.uri = start_line.path
        self.headers = headers
        self.v2 = match is not None
        if match is not None:
            self.model = unquote(match.group(1))
            version = match.group(2)
            self.version = unquote(version) if version is not None else None
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.client_gone = False
        self.done = False
        self.started = time.perf_counter()
        state.in_flight += 1
        service = self.service = state.router.champion
        self.variant = CHAMPION
        self.key: str | None = None
        service.metrics.in_progress.inc()
        self.request_id = choose_request_id(headers.get("X-Request-Id"), service)
        length = headers.get("Content-Length")
        limit = state.max_body_bytes
        if length is not None and length.isdigit():
            size = int(length)
            if size > state.hard_body_limit:  # refuse without reading it (the connection closes)
                disconnect_after_response(self.connection)
                self.answer_error(payload_too_large(size, limit))
            elif size > limit:  # read and discard, to answer on a connection that stays usable
                self.too_large = True
                self.set_max_body_size(size)
        else:
            self.set_max_body_size(state.hard_body_limit)
        return None

    def data_received(self, chunk: bytes) -> Any:
        if self.fallback is not None:
            return self.fallback.data_received(chunk)
        self.size += len(chunk)
        if self.too_large or self.size > self.state.max_body_bytes:
            self.too_large = True
            self.chunks = []
        else:
            self.chunks.append(chunk)
        return None

    def finish(self) -> Any:
        if self.fallback is not None:
            return self.fallback.finish()
        if self.done:
            return None
        try:
            request = self.decode()
            service = self.service
            if service.immediate:
                self.answer(request, service.predict_now(*request[:3], self.key))
                return None
        except Exception as exc:
            self.answer_error(exc)
            return None
        return asyncio.ensure_future(self.predict_later(request))  # tornado awaits it

    def on_connection_close(self) -> None:
        if self.fallback is not None:
            self.fallback.on_connection_close()
            return
        self.client_gone = True
        if not self.done:  # gone before its answer: counted now, the answer goes nowhere
            self.complete(CLIENT_CLOSED)

    # -- a prediction ----------------------------------------------------------------------------
    def decode(self) -> _Request:
        """(rows, outputs wanted, request id, what the encoder needs) from the body, decoded by
        the variant that answers it."""
        state = self.state
        if self.too_large:
            raise payload_too_large(self.size, state.max_body_bytes)
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        headers = self.headers
        if headers.get("Content-Encoding", "").lower() == "deflate":
            body = inflate(body, state.max_body_bytes)
        router = state.router
        routed = router.routed
        key = headers.get(KEY_HEADER) if routed else None
        if not self.v2:
            content_type = headers.get("Content-Type")
            if routed and key is None and router.key_field and is_json(content_type):
                doc = loads(body)
                key = key_from_mlflow(doc, router.key_field, router.features)
                batch = self.route(key).mlflow.decode_parsed(doc)
            else:
                batch = self.route(key).mlflow.decode(body, content_type)
            return batch, (self.service.runtime.primary_output,), self.request_id, None
        version = self.version
        named = router.by_version(version) if version is not None else None
        if named is not None:  # the URL names a version: that variant answers
            self.variant, service = named
            self.switch(service)
        elif not routed:
            service = self.route(key)
        else:
            service = self.service
        service.check_model(self.model, version)
        if routed and named is None:
            doc, binary = parse_body(body, headers.get("Inference-Header-Content-Length"))
            if key is None and router.key_field:
                key = key_from_v2(doc, router.key_field, router.features)
            request = self.route(key).v2.decode_parsed(doc, binary)
        else:
            request = service.v2.decode(body, headers.get("Inference-Header-Content-Length"))
        if request.id is not None and "X-Request-Id" not in headers and is_request_id(request.id):
            self.request_id = request.id
        return request.batch, request.outputs, self.request_id, request

    def route(self, key: str | None) -> ModelService:
        """Choose the variant for sticky ``key`` and make it this request's service."""
        self.key = key
        router = self.state.router
        if router.policy is not None:
            self.variant, service = router.choose(key)
            self.switch(service)
        return self.service

    def switch(self, service: ModelService) -> None:
        if service is not self.service:
            self.service.metrics.in_progress.dec()
            service.metrics.in_progress.inc()
            self.service = service

    async def predict_later(self, request: _Request) -> None:
        try:
            self.answer(request, await self.service.predict(*request[:3], self.key))
        except Exception as exc:
            self.answer_error(exc)

    def answer(self, request: _Request, outputs: Outputs) -> None:
        service = self.service
        shadow = self.state.router.shadow
        if shadow is not None and service is self.state.router.champion:
            shadow_copy(shadow, request, self.key)
        v2_request = request[3]
        if v2_request is None:
            self.respond(200, service.mlflow.encode(outputs[request[1][0]]))
            return
        response_id = v2_request.id if v2_request.id is not None else self.request_id
        payload, header_length = service.v2.encode(v2_request, outputs, response_id)
        if header_length is None:
            self.respond(200, payload)
        else:
            self.respond(
                200,
                payload,
                "application/octet-stream",
                ("Inference-Header-Content-Length", str(header_length)),
            )

    def answer_error(self, error: BaseException) -> None:
        status, body = error_body(error, 500, mlflow=not self.v2)
        log_failure(self.method, self.uri, self.request_id, error, self.client_gone)
        self.respond(status, body)

    # -- the response ----------------------------------------------------------------------------
    def respond(
        self,
        status: int,
        body: bytes,
        content_type: str = JSON_TYPE,
        extra: tuple[str, str] | None = None,
    ) -> None:
        if self.done:
            return
        self.complete(status)
        if self.client_gone:
            return
        if self.state.draining:  # the server is going away: no next request on this connection
            disconnect_after_response(self.connection)
        headers = httputil.HTTPHeaders()
        headers["Content-Type"] = content_type
        headers["Content-Length"] = str(len(body))
        headers["X-Request-Id"] = self.request_id
        headers["Date"] = _http_date()
        if self.state.router.policy is not None:
            headers[VARIANT_HEADER] = self.variant
        if extra is not None:
            headers[extra[0]] = extra[1]
        line = _OK if status == 200 else _status_line(status)
        self.connection.write_headers(line, headers, body)
        self.connection.finish()

    def complete(self, status: int) -> None:
        """Count the request once: in-flight, metrics, access log."""
        self.done = True
        state = self.state
        state.in_flight -= 1
        metrics = self.service.metrics
        metrics.in_progress.dec()
        seconds = time.perf_counter() - self.started
        metrics.observe_request("v2_infer" if self.v2 else "invocations", status, seconds)
        log_access(status, self.method, self.uri, seconds)

    def set_max_body_size(self, size: int) -> None:
        setter = getattr(self.connection, "set_max_body_size", None)
        if setter is not None:  # HTTP/1 connections (all that tornado's HTTPServer makes)
            setter(size)


def _status_line(status: int) -> httputil.ResponseStartLine:
    return httputil.ResponseStartLine("HTTP/1.1", status, httputil.responses.get(status, "Error"))


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The ``Date`` header, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]
