"""REST handlers under ``/modelhub/api/``: parse the request, make one ``Hub`` call, send JSON.

``ModelHubHandler`` is the one base class. It answers every error with the body
``{"error": CODE, "message": ...}``: a ``ModelHubError`` with its own ``http_status`` and
``to_dict()``, tornado's HTTP errors (403, 404, ...) with a code for their status, anything
else with a 500 whose details go to the server log only. ``Hub`` is synchronous, so its calls
run in a thread pool, off the server's event loop. The API is written down in
``docs/openapi.yaml``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httputil import responses

from ..errors import HubNotFound, InvalidArgument, ModelHubError, NotFound
from ..hub import Hub
from ..registry.refs import ModelRef, SemVer, validate_name
from . import parsing

if TYPE_CHECKING:
    from . import ModelHubApp

T = TypeVar("T")

API_PREFIX = "modelhub/api"
AUTH_RESOURCE = "modelhub"
_SEGMENT = r"([^/]+)"  # any one path segment: the domain, not the router, judges names

# Codes for errors that tornado or jupyter_server raise before or around our code.
_STATUS_CODES = {
    400: InvalidArgument.code,
    403: "PERMISSION_DENIED",
    404: NotFound.code,
    405: "METHOD_NOT_ALLOWED",
}

REGISTER_FIELDS = (
    "path",
    "name",
    "sample",
    "reference",
    "description",
    "version",
    "bump",
    "metrics",
    "params",
    "labels",
    "onnx",
)
PROMOTE_FIELDS = ("version", "stage", "message")
DEPLOY_FIELDS = ("ref", "name", "replicas", "port", "follow", "target", "target_options")
UPDATE_FIELDS = ("version", "replicas")
ROLLBACK_FIELDS = ("revision",)
EXPERIMENT_FIELDS = (
    "challenger",
    "kind",
    "split",
    "key",
    "steps",
    "dwell_seconds",
    "guardrails",
    "variant",
)
EXPERIMENT_PROMOTE_FIELDS = ("variant", "stage")


class ModelHubHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every ModelHub handler: hub access, JSON bodies, and one error mapping."""

    auth_resource = AUTH_RESOURCE

    @property
    def modelhub_app(self) -> ModelHubApp:
        return cast("ModelHubApp", self.extensionapp)

    async def run(self, call: Callable[[Hub], T]) -> T:
        """Open the configured hub and run ``call`` on it in a worker thread."""
        location = self.modelhub_app.hub_location()
        return await asyncio.get_running_loop().run_in_executor(None, lambda: call(Hub(location)))

    def json_body(self, allowed: tuple[str, ...]) -> dict[str, Any]:
        """The request body as a JSON object with only ``allowed`` keys (else a 400)."""
        return parsing.json_object(self.request.body, allowed)

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))

    # -- errors ----------------------------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer every error as ``{"error": CODE, "message": TEXT}``."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ModelHubError):
            self.set_status(error.http_status)
            body = error.to_dict()
        elif isinstance(error, web.HTTPError):
            message = error.log_message or error.reason or responses.get(status_code, "Error")
            if error.log_message and error.args:
                message = error.log_message % error.args
            body = {"error": _status_code_name(status_code), "message": message}
        else:
            body = {
                "error": "INTERNAL_ERROR",
                "message": f"Unexpected server error ({type(error).__name__}); "
                "the Jupyter server's log has the details.",
            }
        self.finish(json.dumps(body))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A user's mistake gets one debug line (the access log has its status); bugs a traceback."""
        if isinstance(value, ModelHubError):
            self.log.debug(
                "%d %s %s: %s", value.http_status, self.request.method, self.request.uri, value
            )
            return
        super().log_exception(typ, value, tb)


def _status_code_name(status: int) -> str:
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    return "INTERNAL_ERROR" if status >= 500 else "HTTP_ERROR"


# -- routes ----------------------------------------------------------------------------------------
class HubHandler(ModelHubHandler):
    @web.authenticated
    async def get(self) -> None:
        """Where the hub is, whether it exists, and how many models it holds."""
        location = self.modelhub_app.hub_location()

        def describe(hub: Hub) -> dict[str, Any]:
            return {"path": str(hub.path), "exists": True, "models": len(hub.ls())}

        try:
            self.reply(await self.run(describe))
        except HubNotFound:
            self.reply({"path": str(location.absolute()), "exists": False, "models": 0})


class ModelsHandler(ModelHubHandler):
    @web.authenticated
    async def get(self) -> None:
        """Every model with its latest version and stage holders."""
        summaries = await self.run(lambda hub: hub.ls())
        self.reply({"models": [s.to_dict() for s in summaries]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Register a file or folder of the server's root directory as a new version."""
        body = self.json_body(REGISTER_FIELDS)
        name = parsing.field(body, "name", str, required=True)
        requested = parsing.field(body, "path", str, required=True)
        assert name is not None and requested is not None
        source = parsing.path_in_root(self.serverapp.root_dir, requested)
        tables = {
            key: parsing.path_in_root(self.serverapp.root_dir, value)
            for key in ("sample", "reference")
            if (value := parsing.field(body, key, str))
        }
        options: dict[str, Any] = {
            "version": parsing.field(body, "version", str),
            "bump": parsing.field(body, "bump", str) or "patch",
            "metrics": parsing.number_map(body, "metrics"),
            "params": parsing.field(body, "params", dict),
            "description": parsing.field(body, "description", str) or "",
            "labels": parsing.string_list(body, "labels") or [],
            "onnx": bool(parsing.field(body, "onnx", bool)),
        }

        def register(hub: Hub) -> Any:
            from ..commands import read_table  # pandas: only when a table is given

            data = {key: read_table(str(path)) for key, path in tables.items()}
            return hub.register(str(source), name, **options, **data)

        version = await self.run(register)
        self.set_header(
            "Location",
            url_path_join(self.base_url, API_PREFIX, "versions", quote(version.ref, safe="")),
        )
        self.reply(version.to_dict(), status=201)


class ModelHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """Every live version of a model, newest first, and which version holds each stage."""
        versions = await self.run(lambda hub: hub.versions(name))
        stages = {stage: v.version for v in versions for stage in v.stages}
        self.reply(
            {
                "name": name,
                "versions": [v.to_dict() for v in versions],
                "stages": dict(sorted(stages.items())),
            }
        )


class HistoryHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """Registrations and stage changes of a model, oldest first."""
        events = await self.run(lambda hub: hub.history(name))
        self.reply({"events": [e.to_dict() for e in events]})


class VersionHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, ref: str) -> None:
        """One version: ``name``, ``name@v1.2.0``, ``name@latest`` or ``name#stage``."""
        version = await self.run(lambda hub: hub.show(ref))
        self.reply(version.to_dict())


class StagesHandler(ModelHubHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Put a version of the model into a stage; the stage's previous holder leaves it."""
        validate_name(name)
        body = self.json_body(PROMOTE_FIELDS)
        version = parsing.field(body, "version", str, required=True)
        stage = parsing.field(body, "stage", str, required=True)
        message = parsing.field(body, "message", str)
        assert version is not None and stage is not None
        ref = str(ModelRef(name, version=str(SemVer.parse(version))))
        event = await self.run(lambda hub: hub.promote(ref, stage, message))
        self.reply(event.to_dict())


class StageHandler(ModelHubHandler):
    @web.authenticated
    @authorized
    async def delete(self, name: str, stage: str) -> None:
        """Take the stage away from the version that holds it."""
        validate_name(name)
        event = await self.run(lambda hub: hub.demote(name, stage))
        self.reply(event.to_dict())


class DeploymentsHandler(ModelHubHandler):
    @web.authenticated
    async def get(self) -> None:
        """Every deployment with its desired state and how it is doing."""
        statuses = await self.run(lambda hub: hub.deployments())
        self.reply({"deployments": [s.to_dict() for s in statuses]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Deploy a model version on the server's machine; answers once it is ready."""
        body = self.json_body(DEPLOY_FIELDS)
        ref = parsing.field(body, "ref", str, required=True)
        assert ref is not None
        name = parsing.field(body, "name", str)
        replicas = parsing.field(body, "replicas", int)
        port = parsing.field(body, "port", int)
        follow = bool(parsing.field(body, "follow", bool))
        target = parsing.field(body, "target", str) or "local"
        # which options a target takes, and their values, are the target's to check
        target_options = parsing.field(body, "target_options", dict)
        status = await self.run(
            lambda hub: hub.deploy(
                ref,
                name,
                replicas=1 if replicas is None else replicas,
                port=port,
                follow_stage=follow,
                target=target,
                target_options=target_options,
            )
        )
        self.set_header(
            "Location", url_path_join(self.base_url, API_PREFIX, "deployments", status.name)
        )
        self.reply(status.to_dict(), status=201)


class TargetsHandler(ModelHubHandler):
    @web.authenticated
    async def get(self) -> None:
        """The deployment targets this server can deploy to (built-in ones, then plugins)."""
        self.reply({"targets": Hub.targets()})


class DeploymentHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """One deployment: desired state, replicas with their health, last error."""
        status = await self.run(lambda hub: hub.deployment(name))
        self.reply(status.to_dict())

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        """Stop the deployment (stopping what does not run is not an error)."""
        stopped = await self.run(lambda hub: hub.stop(name))
        self.reply({"name": name, "stopped": stopped})


class DeploymentUpdateHandler(ModelHubHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Roll the deployment to another version (and/or number of replicas)."""
        body = self.json_body(UPDATE_FIELDS)
        version = parsing.field(body, "version", str)
        replicas = parsing.field(body, "replicas", int)
        status = await self.run(lambda hub: hub.update(name, version, replicas=replicas))
        self.reply(status.to_dict())


class DeploymentRollbackHandler(ModelHubHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Go back to an earlier revision (default: the previous one)."""
        body = self.json_body(ROLLBACK_FIELDS) if self.request.body.strip() else {}
        revision = parsing.field(body, "revision", int)
        status = await self.run(lambda hub: hub.rollback(name, revision))
        self.reply(status.to_dict())


class DeploymentRevisionsHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """The deployment's revisions, oldest first; the last one is current."""
        revisions = await self.run(lambda hub: hub.revisions(name))
        self.reply({"name": name, "revisions": [r.to_dict() for r in revisions]})


class DeploymentLogsHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """The last ``tail`` lines (default 100) of the deployment's log."""
        tail = parsing.query_int(self.get_argument("tail", None), "tail", default=100)
        lines = await self.run(lambda hub: hub.deployment_logs(name, tail))
        self.reply({"name": name, "lines": lines})


class ExperimentHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """The deployment's experiment (running or ended)."""
        policy = await self.run(lambda hub: hub.ab_policy(name))
        self.reply(policy.to_dict())

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Start an experiment: a challenger next to the deployment's champion."""
        body = self.json_body(EXPERIMENT_FIELDS)
        challenger = parsing.field(body, "challenger", str, required=True)
        assert challenger is not None
        options: dict[str, Any] = {
            key: value
            for key, value in {
                "kind": parsing.field(body, "kind", str),
                "split": parsing.field(body, "split", str),
                "key": parsing.field(body, "key", str),
                "steps": parsing.field(body, "steps", str),
                "dwell_seconds": parsing.number(body, "dwell_seconds"),
                "guardrails": parsing.number_map(body, "guardrails", nullable=True),
                "variant": parsing.field(body, "variant", str),
            }.items()
            if value is not None
        }
        status = await self.run(lambda hub: hub.ab_start(name, challenger, **options))
        self.set_header(
            "Location",
            url_path_join(self.base_url, API_PREFIX, "deployments", status.name, "experiment"),
        )
        self.reply(status.to_dict(), status=201)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        """End the experiment (``?reason=`` says why): all traffic back to the champion."""
        reason = self.get_argument("reason", None) or "stopped by the user"
        status = await self.run(lambda hub: hub.ab_stop(name, reason))
        self.reply(status.to_dict())


class ExperimentPromoteHandler(ModelHubHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Make a challenger the champion, and give it the stage (one step)."""
        body = self.json_body(EXPERIMENT_PROMOTE_FIELDS) if self.request.body.strip() else {}
        variant = parsing.field(body, "variant", str)
        stage = parsing.field(body, "stage", str)
        status = await self.run(lambda hub: hub.ab_promote(name, variant, stage=stage))
        self.reply(status.to_dict())


class ExperimentAdvanceHandler(ModelHubHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Move a canary to its next step now."""
        status = await self.run(lambda hub: hub.ab_advance(name))
        self.reply(status.to_dict())


class ExperimentReportHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """The A/B report from the outcomes posted so far."""
        options: dict[str, Any] = {
            "metric": self.get_argument("metric", None) or "auto",
            "alpha": parsing.query_float(self.get_argument("alpha", None), "alpha", default=0.05),
            "min_samples": parsing.query_int(
                self.get_argument("min_samples", None), "min_samples", default=100
            ),
            "higher_is_better": parsing.query_bool(
                self.get_argument("higher_is_better", None), "higher_is_better", default=True
            ),
        }
        analysis = await self.run(lambda hub: hub.ab_report(name, **options))
        self.reply(analysis.to_dict())


class ExperimentShadowHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """Agreement between champion and challenger on the same requests."""
        top = parsing.query_int(self.get_argument("top", None), "top", default=10)
        report = await self.run(lambda hub: hub.shadow_report(name, top))
        self.reply(report.to_dict())


class DriftHandler(ModelHubHandler):
    def drift_options(self) -> dict[str, Any]:
        """``Hub.drift``'s keyword arguments from the query (the hub checks their values)."""
        options: dict[str, Any] = {
            key: self.get_argument(key, None) or None
            for key in ("window", "since", "until", "over_time", "step")
        }
        drift = {
            key: value for key in ("test", "correction") if (value := self.get_argument(key, None))
        }
        options["options"] = drift or None
        options["all_versions"] = parsing.query_bool(
            self.get_argument("all_versions", None), "all_versions", default=False
        )
        return options

    @web.authenticated
    async def get(self, name: str) -> None:
        """Drift of the requests the deployment logged against its version's reference data:
        features sorted by drift, with the histograms the dashboards draw."""
        options = self.drift_options()
        drift = await self.run(lambda hub: hub.drift(name, **options))
        self.reply(drift.to_dict())


class DriftSummaryHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """Only the dataset-level verdict (``drift``, ``ok`` or ``no_data``): a cheap badge."""
        window = self.get_argument("window", None) or None
        summary = await self.run(lambda hub: hub.drift_summary(name, window))
        self.reply(summary.to_dict())


class DriftHtmlHandler(DriftHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """The same drift as one self-contained HTML page, to share."""
        options = self.drift_options()
        page = await self.run(lambda hub: hub.drift_html(name, **options))
        self.finish(page, set_content_type="text/html; charset=UTF-8")


#: the longest measurement ``/monitor`` waits for (seconds)
MAX_MONITOR_INTERVAL = 10.0


class MonitorHandler(ModelHubHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        """Health per variant over ``interval`` seconds (default 1): requests/s, error rate,
        p50/p99 latency, batch size; and each replica's health."""
        interval = parsing.query_float(self.get_argument("interval", None), "interval", default=1)
        if not 0 < interval <= MAX_MONITOR_INTERVAL:
            raise InvalidArgument(
                f"The query argument interval={interval:g} must be in (0, {MAX_MONITOR_INTERVAL:g}]."
            )

        # Two readings ``interval`` apart; the wait holds no worker thread, so that the
        # sidebar's polling of many deployments never starves the other routes.
        previous = await self.run(lambda hub: hub.scrape_metrics(name))
        await asyncio.sleep(interval)

        def measure(hub: Hub) -> dict[str, Any]:
            points = hub.monitor(name, previous=previous)
            status = hub.deployment(name)
            return {
                "name": name,
                "health": [p.to_dict() for p in points],
                "replicas": [r.to_dict() for r in status.replicas],
            }

        self.reply(await self.run(measure))


class AlertsHandler(ModelHubHandler):
    def deployments(self) -> list[str] | None:
        return self.get_arguments("deployment") or None


class AlertRulesHandler(AlertsHandler):
    @web.authenticated
    async def get(self) -> None:
        """Prometheus alerting rules (YAML) on error rate, p99 latency and drift share."""
        from ..monitoring.alerts import AlertThresholds

        given: dict[str, Any] = {
            field: parsing.query_float(self.get_argument(key, None), key, default=math.nan)
            for key, field in (
                ("error_rate", "error_rate"),
                ("p99", "p99_latency_seconds"),
                ("drift_share", "drift_share"),
            )
        }
        thresholds = AlertThresholds(**{k: v for k, v in given.items() if not math.isnan(v)})
        deployments = self.deployments()
        rules = await self.run(lambda hub: hub.alert_rules(deployments, thresholds))
        self.finish(rules, set_content_type="text/yaml; charset=UTF-8")


class AlertGrafanaHandler(AlertsHandler):
    @web.authenticated
    async def get(self) -> None:
        """A Grafana dashboard (JSON model) of the deployments' health and drift share."""
        deployments = self.deployments()
        self.reply(await self.run(lambda hub: hub.grafana_dashboard(deployments)))


class UnknownEndpointHandler(ModelHubHandler):
    """A JSON 404 for any other path under the API, instead of an HTML page.

    Its writing verbs are ``@authorized`` too, so that every writing verb of the API is.
    """

    def _unknown(self, path: str) -> None:
        raise NotFound(
            f"No ModelHub API endpoint at /{API_PREFIX}/{path}.",
            hint="The endpoints are described in jupyter-modelhub's docs/openapi.yaml.",
        )

    @web.authenticated
    def get(self, path: str) -> None:
        self._unknown(path)

    @web.authenticated
    @authorized
    def post(self, path: str) -> None:
        self._unknown(path)

    @web.authenticated
    @authorized
    def put(self, path: str) -> None:
        self._unknown(path)

    @web.authenticated
    @authorized
    def patch(self, path: str) -> None:
        self._unknown(path)

    @web.authenticated
    @authorized
    def delete(self, path: str) -> None:
        self._unknown(path)


def routes() -> list[tuple[str, type[ModelHubHandler]]]:
    """URL patterns (relative to the server's base URL) and their handlers."""
    api, segment = API_PREFIX, _SEGMENT
    return [
        (rf"/{api}/hub", HubHandler),
        (rf"/{api}/models", ModelsHandler),
        (rf"/{api}/models/{segment}", ModelHandler),
        (rf"/{api}/models/{segment}/history", HistoryHandler),
        (rf"/{api}/models/{segment}/stages", StagesHandler),
        (rf"/{api}/models/{segment}/stages/{segment}", StageHandler),
        (rf"/{api}/versions/{segment}", VersionHandler),
        (rf"/{api}/targets", TargetsHandler),
        (rf"/{api}/deployments", DeploymentsHandler),
        (rf"/{api}/deployments/{segment}", DeploymentHandler),
        (rf"/{api}/deployments/{segment}/update", DeploymentUpdateHandler),
        (rf"/{api}/deployments/{segment}/rollback", DeploymentRollbackHandler),
        (rf"/{api}/deployments/{segment}/revisions", DeploymentRevisionsHandler),
        (rf"/{api}/deployments/{segment}/logs", DeploymentLogsHandler),
        (rf"/{api}/deployments/{segment}/experiment", ExperimentHandler),
        (rf"/{api}/deployments/{segment}/experiment/promote", ExperimentPromoteHandler),
        (rf"/{api}/deployments/{segment}/experiment/advance", ExperimentAdvanceHandler),
        (rf"/{api}/deployments/{segment}/experiment/report", ExperimentReportHandler),
        (rf"/{api}/deployments/{segment}/experiment/shadow", ExperimentShadowHandler),
        (rf"/{api}/deployments/{segment}/drift", DriftHandler),
        (rf"/{api}/deployments/{segment}/drift.html", DriftHtmlHandler),
        (rf"/{api}/deployments/{segment}/drift/summary", DriftSummaryHandler),
        (rf"/{api}/deployments/{segment}/monitor", MonitorHandler),
        (rf"/{api}/alerts/rules", AlertRulesHandler),
        (rf"/{api}/alerts/grafana", AlertGrafanaHandler),
        (rf"/{api}/(.*)", UnknownEndpointHandler),
    ]
