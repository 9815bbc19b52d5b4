"""Every REST endpoint demands authentication, and every writing one authorization.

Three independent checks, as the JupyterLab extension template's CI does and more:

- jupyter_server's own audit: started with ``ServerApp.allow_unauthenticated_access = False``
  it warns (``JupyterServerAuthWarning``) about extension handlers whose verbs lack
  ``@web.authenticated``; none of ours may appear;
- behaviour: each verb of each route, called without the token, answers 403 (with the default
  ``allow_unauthenticated_access = True``, so only our decorators stand in the way);
- authorization: with an authorizer that grants only "read" on "modelhub", reads work and
  writes are refused; granting "write" lets them through.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.serverapp import JupyterServerAuthWarning
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import HTTPClientError

from jupyter_modelhub import Hub
from jupyter_modelhub.server.handlers import AUTH_RESOURCE, ModelHubHandler, routes

WRITING_VERBS = {"POST", "PUT", "PATCH", "DELETE"}

# One example URL (under /modelhub/api/) for each route pattern; a new route must be added here.
EXAMPLES = {
    "hub": "hub",
    "models": "models",
    "models/([^/]+)": "models/fraud",
    "models/([^/]+)/history": "models/fraud/history",
    "models/([^/]+)/stages": "models/fraud/stages",
    "models/([^/]+)/stages/([^/]+)": "models/fraud/stages/prod",
    "versions/([^/]+)": f"versions/{quote('fraud@v0.0.1', safe='')}",
    "targets": "targets",
    "deployments": "deployments",
    "deployments/([^/]+)": "deployments/fraud",
    "deployments/([^/]+)/update": "deployments/fraud/update",
    "deployments/([^/]+)/rollback": "deployments/fraud/rollback",
    "deployments/([^/]+)/revisions": "deployments/fraud/revisions",
    "deployments/([^/]+)/logs": "deployments/fraud/logs",
    "deployments/([^/]+)/experiment": "deployments/fraud/experiment",
    "deployments/([^/]+)/experiment/promote": "deployments/fraud/experiment/promote",
    "deployments/([^/]+)/experiment/advance": "deployments/fraud/experiment/advance",
    "deployments/([^/]+)/experiment/report": "deployments/fraud/experiment/report",
    "deployments/([^/]+)/experiment/shadow": "deployments/fraud/experiment/shadow",
    "deployments/([^/]+)/drift": "deployments/fraud/drift",
    "deployments/([^/]+)/drift.html": "deployments/fraud/drift.html",
    "deployments/([^/]+)/drift/summary": "deployments/fraud/drift/summary",
    "deployments/([^/]+)/monitor": "deployments/fraud/monitor",
    "alerts/rules": "alerts/rules",
    "alerts/grafana": "alerts/grafana",
    "(.*)": "no/such/endpoint",
}


def implemented_verbs(handler: type[web.RequestHandler]) -> list[str]:
    """The HTTP verbs a handler answers, except OPTIONS (CORS preflight, public by design)."""
    return [
        verb
        for verb in handler.SUPPORTED_METHODS
        if verb != "OPTIONS"
        and getattr(handler, verb.lower()) is not web.RequestHandler._unimplemented_method
    ]


def every_request() -> list[tuple[str, str]]:
    """(verb, path under /modelhub/api/) for every verb of every route."""
    requests = []
    for pattern, handler in routes():
        relative = pattern.removeprefix("/modelhub/api/")
        assert relative in EXAMPLES, f"add an example URL for {pattern} to EXAMPLES"
        requests += [(verb, EXAMPLES[relative]) for verb in implemented_verbs(handler)]
    return requests


def base_config(hub_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_modelhub": True}},
        "ModelHubApp": {"hub_path": str(hub_path)},
    }


@pytest.fixture
def jp_server_config(hub_path: Path) -> dict[str, Any]:
    return base_config(hub_path)


@pytest.fixture
def fraud(hub: Hub, classifier) -> Hub:
    hub.register(classifier, "fraud")
    hub.register(classifier, "fraud")
    hub.promote("fraud@v0.0.1", "prod")
    return hub


# -- jupyter_server's audit of handlers ----------------------------------------------------------
def test_server_audit_finds_no_unauthenticated_modelhub_handler(
    jp_configurable_serverapp, hub_path: Path
) -> None:
    config = base_config(hub_path)
    config["ServerApp"]["allow_unauthenticated_access"] = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp(config=config)

    # The extension did load: its routes are in the web application.
    registered = {
        rule.target
        for outer in app.web_app.default_router.rules
        for rule in getattr(outer.target, "rules", [])
    }
    assert {handler for _, handler in routes()} <= registered

    audit = [str(w.message) for w in caught if issubclass(w.category, JupyterServerAuthWarning)]
    ours = {handler.__name__ for _, handler in routes()} | {"modelhub"}
    assert not [m for m in audit if any(name in m for name in ours)], audit

    # The audit itself works: it does flag a handler without @web.authenticated.
    class Careless(APIHandler):
        def get(self) -> None:
            self.finish("{}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app.web_app.add_handlers(".*$", [(r"/careless", Careless)])
    assert any("GET of Careless" in str(w.message) for w in caught)


def test_every_verb_is_authenticated_and_every_write_authorized(jp_serverapp) -> None:
    """The same audit, verb by verb, plus the order of the decorators."""
    for pattern, handler in routes():
        assert issubclass(handler, ModelHubHandler)
        assert handler.auth_resource == AUTH_RESOURCE == "modelhub"
        assert jp_serverapp.web_app._check_handler_auth(pattern, handler) == []
        for verb in implemented_verbs(handler):
            method = getattr(handler, verb.lower())
            # @web.authenticated must be the outer decorator (jupyter_server's check relies on it).
            assert method.__code__.co_qualname.startswith("authenticated"), (handler, verb)
            inner = method.__wrapped__
            is_authorized = inner.__code__.co_qualname.startswith(authorized.__name__)
            assert is_authorized == (verb in WRITING_VERBS), (handler, verb)


# -- behaviour without the token -----------------------------------------------------------------
@pytest.mark.parametrize(("verb", "path"), every_request())
async def test_no_token_no_access(
    http_server_client, jp_serverapp, jp_base_url: str, fraud: Hub, verb: str, path: str
) -> None:
    assert jp_serverapp.web_app.settings["allow_unauthenticated_access"] is True
    # A matching XSRF cookie and header pass the XSRF check: only authentication refuses.
    headers = {"Cookie": "_xsrf=abc", "X-XSRFToken": "abc"}
    body = json.dumps({"version": "v0.0.2", "stage": "prod"}) if verb in WRITING_VERBS else None
    with pytest.raises(HTTPClientError) as info:
        await http_server_client.fetch(
            url_path_join(jp_base_url, "modelhub/api", path),
            method=verb,
            body=body,
            headers=headers,
            allow_nonstandard_methods=True,
        )
    assert info.value.code == 403, (verb, path)
    reply = json.loads(info.value.response.body)
    assert reply["error"] == "PERMISSION_DENIED"
    assert "xsrf" not in reply["message"].lower()
    assert fraud.ls()[0].stages == {"prod": "v0.0.1"}


# -- authorization ---------------------------------------------------------------------------------
@pytest.fixture
def jp_server_auth_resources() -> dict[str, str]:
    """What pytest-jupyter's test authorizer expects each URL to be authorized as."""
    return {r"/modelhub/api/.*": AUTH_RESOURCE}


@pytest.fixture
def authorizer_config(jp_server_config, jp_server_authorizer) -> dict[str, Any]:
    jp_server_config["ServerApp"]["authorizer_class"] = jp_server_authorizer
    return jp_server_config


@pytest.fixture
def grant(jp_server_authorizer, monkeypatch):
    def set_permissions(*actions: str) -> None:
        monkeypatch.setattr(
            jp_server_authorizer,
            "permissions",
            {"actions": list(actions), "resources": [AUTH_RESOURCE]},
        )

    return set_permissions


async def test_read_permission_reads_but_cannot_write(
    authorizer_config, grant, jp_fetch, fraud: Hub
) -> None:
    grant("read")
    assert (await jp_fetch("modelhub", "api", "models")).code == 200
    assert (await jp_fetch("modelhub", "api", "versions", "fraud#prod")).code == 200
    writes = [
        ("POST", ("models", "fraud", "stages"), {"version": "v0.0.2", "stage": "prod"}),
        ("DELETE", ("models", "fraud", "stages", "prod"), None),
        ("POST", ("models",), {"path": "m.joblib", "name": "other"}),
    ]
    for verb, parts, body in writes:
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch(
                "modelhub",
                "api",
                *parts,
                method=verb,
                body=None if body is None else json.dumps(body),
            )
        assert info.value.code == 403, parts
        message = json.loads(info.value.response.body)["message"]
        assert re.search(r"not authorized to write on resource: modelhub", message)
    assert fraud.ls()[0].stages == {"prod": "v0.0.1"}


async def test_write_permission_writes(authorizer_config, grant, jp_fetch, fraud: Hub) -> None:
    grant("read", "write")
    body = json.dumps({"version": "v0.0.2", "stage": "prod"})
    response = await jp_fetch(
        "modelhub", "api", "models", "fraud", "stages", method="POST", body=body
    )
    assert response.code == 200
    assert fraud.ls()[0].stages == {"prod": "v0.0.2"}
