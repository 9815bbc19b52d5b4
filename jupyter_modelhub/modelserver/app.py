"""The tornado application of the model server: its routes."""

from __future__ import annotations

import os

from tornado import web

from ..experiments.policy import CHAMPION
from ..serving.contract import ADMIN_TOKEN_ENV
from ..serving.outcomes import FEEDBACK_FOLDER, FeedbackLog
from ..serving.service import ModelService
from ..serving.traffic import TrafficRouter
from . import handlers as h
from .exchange import ModelServerApplication
from .openapi import openapi_document

_MODEL = r"/v2/models/([^/]+)(?:/versions/([^/]+))?"


def make_app(
    served: ModelService | TrafficRouter, max_body_bytes: int = 10 * 1024 * 1024
) -> web.Application:
    """The application serving one model (``ModelService``) or a deployment's variants
    (``TrafficRouter``); its ``state`` is shared by every listener."""
    router = served if isinstance(served, TrafficRouter) else TrafficRouter({CHAMPION: served})
    log_dir = router.champion.options.log_dir
    state = h.ServerState(
        router,
        max_body_bytes=max_body_bytes,
        feedback=FeedbackLog(log_dir / FEEDBACK_FOLDER) if log_dir is not None else None,
        admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None,
    )
    state.openapi = openapi_document(router.champion)
    kwargs = {"state": state}
    routes = [
        (r"/v2/health/live", h.LiveHandler),
        (r"/v2/health/ready", h.ReadyHandler),
        (r"/v2/?", h.ServerMetadataHandler),
        (_MODEL + r"/?", h.ModelMetadataHandler),
        (_MODEL + r"/ready", h.ModelReadyHandler),
        (_MODEL + r"/config", h.ModelConfigHandler),
        (_MODEL + r"/infer", h.PredictionRouteHandler),
        (_MODEL + r"/feedback", h.FeedbackHandler),
        (r"/feedback", h.FeedbackHandler),
        (r"/invocations", h.PredictionRouteHandler),
        (r"/(?:ping|health)", h.PingHandler),
        (r"/metrics", h.MetricsHandler),
        (r"/openapi\.json", h.OpenApiHandler),
    ]
    app = ModelServerApplication(
        [(pattern, handler, kwargs) for pattern, handler in routes],
        default_handler_class=h.NotFoundHandler,
        default_handler_args=kwargs,
        compress_response=False,
        log_function=_log_request,
    )
    app.settings["modelhub_state"] = state
    return app


def make_admin_app(state: h.ServerState) -> web.Application:
    """The admin listener's application (127.0.0.1, for the supervisor): health, metrics,
    and the live traffic policy."""
    kwargs = {"state": state}
    routes = [
        (r"/v2/health/live", h.LiveHandler),
        (r"/v2/health/ready", h.ReadyHandler),
        (_MODEL + r"/ready", h.ModelReadyHandler),
        (r"/metrics", h.MetricsHandler),
        (r"/admin/traffic", h.AdminTrafficHandler),
    ]
    app = web.Application(
        [(pattern, handler, kwargs) for pattern, handler in routes],
        default_handler_class=h.NotFoundHandler,
        default_handler_args=kwargs,
        log_function=_log_request,
    )
    app.settings["modelhub_state"] = state
    return app


def _log_request(handler: web.RequestHandler) -> None:
    request = handler.request
    h.log_access(
        handler.get_status(), request.method or "?", request.uri or "?", request.request_time()
    )
