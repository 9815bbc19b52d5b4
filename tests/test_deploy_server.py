"""The deployment routes of the REST API, through a real Jupyter server (pytest-jupyter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jupyter_server.utils import url_path_join
from test_deploy import (
    ROW,
    infer,
    register_corrupt_version,
    register_two_versions,
    stop_every_deployment,
    use_model_server,
)
from test_server import OPENAPI, _json_schema
from tornado.httpclient import HTTPClientError

from jupyter_modelhub import Hub


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


@pytest.fixture
def deployed(hub: Hub, classifier, training_data) -> Iterator[Hub]:
    yield register_two_versions(hub, classifier, training_data)
    stop_every_deployment(hub)


@pytest.fixture
def call(http_server_client, jp_base_url: str, jp_auth_header: dict[str, str]):
    """``await call("POST", "deployments", body={...})``: status and JSON, errors included."""

    async def fetch(method: str, *segments: str, body: Any = None, query: str = ""):
        url = url_path_join(jp_base_url, "modelhub/api", *segments) + query
        raw = json.dumps(body).encode() if body is not None else None
        if raw is None and method == "POST":
            raw = b""
        try:
            response = await http_server_client.fetch(
                url,
                method=method,
                body=raw,
                headers=jp_auth_header,
                allow_nonstandard_methods=True,
                request_timeout=120,
            )
        except HTTPClientError as error:
            assert error.response is not None
            response = error.response
        return response.code, json.loads(response.body)

    return fetch


@pytest.fixture
def checked(call):
    """Like ``call``, and the answer must match the route's schema in docs/openapi.yaml."""
    import jsonschema

    openapi = yaml.safe_load(OPENAPI.read_text())
    components = openapi["components"]["schemas"]

    async def fetch(method: str, path: str, status: int, *segments: str, **kwargs: Any):
        code, reply = await call(method, *segments, **kwargs)
        assert code == status, reply
        response = openapi["paths"][path][method.lower()]["responses"][str(status)]
        if "$ref" in response:
            response = openapi["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response["content"]["application/json"]["schema"]
        jsonschema.validate(reply, _json_schema(schema, components))
        return reply

    return fetch


async def test_deployments_over_rest(
    checked, call, deployed: Hub, training_data, jp_server_config
) -> None:
    status = await checked(
        "POST",
        "/deployments",
        201,
        "deployments",
        body={"ref": "fraud#prod", "name": "api", "replicas": 2, "follow": True},
    )
    assert (status["name"], status["serving_version"], status["phase"]) == (
        "api",
        "v0.0.1",
        "running",
    )
    assert [r["health"] for r in status["replicas"]] == ["ready", "ready"]
    assert infer(status["endpoint"], [ROW])[1]["model_version"] == "v0.0.1"

    listing = await checked("GET", "/deployments", 200, "deployments")
    assert [d["name"] for d in listing["deployments"]] == ["api"]
    one = await checked("GET", "/deployments/{name}", 200, "deployments", "api")
    assert one["follow_stage"] is True and one["revision"] == 1

    updated = await checked(
        "POST", "/deployments/{name}/update", 200, "deployments", "api", "update",
        body={"version": "v0.0.2"},
    )  # fmt: skip
    assert updated["serving_version"] == "v0.0.2" and updated["revision"] == 2
    revisions = await checked(
        "GET", "/deployments/{name}/revisions", 200, "deployments", "api", "revisions"
    )
    assert [r["spec"]["version"] for r in revisions["revisions"]] == ["v0.0.1", "v0.0.2"]
    rolled = await checked(
        "POST", "/deployments/{name}/rollback", 200, "deployments", "api", "rollback"
    )
    assert (rolled["serving_version"], rolled["revision"]) == ("v0.0.1", 3)
    rolled = await checked(
        "POST", "/deployments/{name}/rollback", 200, "deployments", "api", "rollback",
        body={"revision": 2},
    )  # fmt: skip
    assert rolled["serving_version"] == "v0.0.2"
    logs = await checked(
        "GET", "/deployments/{name}/logs", 200, "deployments", "api", "logs", query="?tail=3"
    )
    assert len(logs["lines"]) == 3

    # A version that cannot load: 502 with the server's reason; the old version serves on.
    register_corrupt_version(deployed, training_data)
    failed = await checked(
        "POST", "/deployments/{name}/update", 502, "deployments", "api", "update",
        body={"version": "v0.0.3"},
    )  # fmt: skip
    assert failed["error"] == "BACKEND_ERROR"
    assert failed["message"].startswith("Deployment api failed: ")
    assert infer(status["endpoint"], [ROW])[1]["model_version"] == "v0.0.2"

    # User mistakes: 400 and 404 with a message, never a 500.
    await checked("GET", "/deployments/{name}", 404, "deployments", "apj")
    await checked("GET", "/deployments/{name}", 400, "deployments", "API")
    await checked(
        "GET", "/deployments/{name}/logs", 400, "deployments", "api", "logs", query="?tail=x"
    )
    await checked(
        "POST", "/deployments", 400, "deployments", body={"ref": "fraud", "replicas": "2"}
    )
    await checked(
        "POST", "/deployments/{name}/update", 400, "deployments", "api", "update", body={}
    )
    await checked("POST", "/deployments/{name}/rollback", 400, "deployments", "api", "rollback",
                  body={"revision": 99})  # fmt: skip

    stopped = await checked("DELETE", "/deployments/{name}", 200, "deployments", "api")
    assert stopped == {"name": "api", "stopped": True}
    again = await checked("DELETE", "/deployments/{name}", 200, "deployments", "api")
    assert again == {"name": "api", "stopped": False}
    assert (await checked("GET", "/deployments", 200, "deployments"))["deployments"] == []


async def test_deploy_target_options_are_the_targets_to_check(
    checked, deployed: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An option the target does not take: a 400 naming the ones it takes; nothing recorded.
    unknown = await checked(
        "POST", "/deployments", 400, "deployments",
        body={"ref": "fraud", "target": "kubernetes", "target_options": {"namespacee": "ml"}},
    )  # fmt: skip
    assert unknown["error"] == "INVALID_ARGUMENT"
    assert "namespacee" in unknown["message"]
    for known in ("namespace", "context", "image", "secret", "hpa_max"):
        assert known in unknown["message"]
    bad_value = await checked(
        "POST", "/deployments", 400, "deployments",
        body={"ref": "fraud", "target": "kubernetes", "target_options": {"namespace": "Not_A_Label"}},
    )  # fmt: skip
    assert "namespace" in bad_value["message"]
    local = await checked(
        "POST", "/deployments", 400, "deployments",
        body={"ref": "fraud", "target_options": {"namespace": "ml"}},
    )  # fmt: skip
    assert local["message"] == "The local target takes no target options (namespace)."
    not_an_object = await checked(
        "POST", "/deployments", 400, "deployments",
        body={"ref": "fraud", "target_options": ["namespace"]},
    )  # fmt: skip
    assert "'target_options' must be an object" in not_an_object["message"]
    assert (await checked("GET", "/deployments", 200, "deployments"))["deployments"] == []

    # Good options reach the hub as they were sent (no cluster here: the hub's answer is faked).
    seen: dict[str, Any] = {}
    real_deploy = Hub.deploy

    def deploy(self: Hub, ref: str, name: str | None = None, **kwargs: Any):
        seen.update(kwargs)
        kwargs.update(target="local", target_options=None)
        return real_deploy(self, ref, name, **kwargs)

    monkeypatch.setattr(Hub, "deploy", deploy)
    options = {
        "namespace": "ml",
        "context": "prod-cluster",
        "image": "reg/modelhub:1",
        "secret": "dvc",
    }
    status = await checked(
        "POST", "/deployments", 201, "deployments",
        body={"ref": "fraud", "name": "k", "target": "kubernetes", "target_options": options},
    )  # fmt: skip
    assert status["name"] == "k"
    assert (seen["target"], seen["target_options"]) == ("kubernetes", options)
