"""The REST API of the server extension, through a real Jupyter server (pytest-jupyter).

Async tests are run by pytest-jupyter's own hook on its event loop (no asyncio mark needed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import joblib
import pandas as pd
import pytest
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError, HTTPResponse

from jupyter_modelhub import Hub


@pytest.fixture
def api(http_server_client, jp_base_url: str, jp_auth_header: dict[str, str]):
    """``await api("GET", "models", "fraud")``: the status and decoded JSON, errors included.

    Each path segment is URL-encoded whole (``fraud@v0.0.1`` travels as ``fraud%40v0.0.1``,
    ``a/b`` as ``a%2Fb``), as the frontend's ``encodeURIComponent`` does.
    """

    async def call(
        method: str,
        *segments: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
        if raw is None and method in ("POST", "PUT", "PATCH"):
            raw = b""
        url = url_path_join(jp_base_url, "modelhub/api", *(quote(s, safe="") for s in segments))
        try:
            response: HTTPResponse = await http_server_client.fetch(
                url,
                method=method,
                body=raw,
                headers={**jp_auth_header, **(headers or {})},
                allow_nonstandard_methods=True,
                request_timeout=60,
            )
        except HTTPClientError as error:
            assert error.response is not None
            response = error.response
        assert response.headers["Content-Type"].startswith("application/json")
        return response.code, json.loads(response.body)

    return call


@pytest.fixture
def fraud(hub: Hub, classifier) -> Hub:
    """A hub with fraud v0.0.1 (in prod) and v0.0.2, and churn v0.0.1."""
    hub.register(classifier, "fraud", metrics={"auc": 0.9}, description="first")
    hub.register(classifier, "fraud", metrics={"auc": 0.95})
    hub.register(classifier, "churn")
    hub.promote("fraud@v0.0.1", "prod")
    return hub


# -- reading ------------------------------------------------------------------------------------
async def test_hub_reports_its_path_and_model_count(api, fraud: Hub) -> None:
    status, body = await api("GET", "hub")
    assert status == 200
    assert body == {"path": str(fraud.path), "exists": True, "models": 2}


async def test_hub_that_does_not_exist_is_reported_not_failed(api, hub_path: Path) -> None:
    status, body = await api("GET", "hub")
    assert status == 200
    assert body == {"path": str(hub_path), "exists": False, "models": 0}


async def test_list_models(api, fraud: Hub) -> None:
    status, body = await api("GET", "models")
    assert status == 200
    assert [m["name"] for m in body["models"]] == ["churn", "fraud"]
    churn, model = body["models"]
    assert churn["latest"] == "v0.0.1" and churn["versions"] == 1 and churn["stages"] == {}
    assert model["latest"] == "v0.0.2"
    assert model["versions"] == 2
    assert model["stages"] == {"prod": "v0.0.1"}
    assert model["deprecated"] is False
    assert model == fraud.ls()[1].to_dict()


async def test_list_is_empty_in_a_new_hub(api, hub: Hub) -> None:
    assert await api("GET", "models") == (200, {"models": []})


async def test_show_model_lists_versions_newest_first_with_stages(api, fraud: Hub) -> None:
    status, body = await api("GET", "models", "fraud")
    assert status == 200
    assert body["name"] == "fraud"
    assert [v["meta"]["version"] for v in body["versions"]] == ["v0.0.2", "v0.0.1"]
    assert [v["tag"] for v in body["versions"]] == ["fraud@v0.0.2", "fraud@v0.0.1"]
    assert [v["stages"] for v in body["versions"]] == [[], ["prod"]]
    assert body["versions"][1]["meta"]["metrics"] == {"auc": 0.9}
    assert body["versions"][1]["meta"]["description"] == "first"
    assert body["stages"] == {"prod": "v0.0.1"}
    assert body["versions"] == [v.to_dict() for v in fraud.versions("fraud")]


async def test_history_lists_events_oldest_first(api, fraud: Hub) -> None:
    status, body = await api("GET", "models", "fraud", "history")
    assert status == 200
    events = body["events"]
    assert [(e["kind"], e["version"], e["stage"]) for e in events] == [
        ("register", "v0.0.1", None),
        ("register", "v0.0.2", None),
        ("assign", "v0.0.1", "prod"),
    ]
    assert events == [e.to_dict() for e in fraud.history("fraud")]


@pytest.mark.parametrize(
    ("ref", "version"),
    [("fraud@v0.0.1", "v0.0.1"), ("fraud#prod", "v0.0.1"), ("fraud", "v0.0.2")],
)
async def test_show_version_by_reference(api, fraud: Hub, ref: str, version: str) -> None:
    # jp_fetch URL-encodes the path: fraud@v0.0.1 travels as fraud%40v0.0.1, # as %23.
    status, body = await api("GET", "versions", ref)
    assert status == 200
    assert body["meta"]["name"] == "fraud"
    assert body["meta"]["version"] == version
    assert body == fraud.show(ref).to_dict()


# -- stages ---------------------------------------------------------------------------------------
async def test_promote_then_demote(api, fraud: Hub) -> None:
    status, event = await api(
        "POST", "models", "fraud", "stages", body={"version": "v0.0.2", "stage": "prod"}
    )
    assert status == 200
    assert event["name"] == "fraud"
    assert (event["kind"], event["version"], event["stage"]) == ("assign", "v0.0.2", "prod")
    assert event["tag"].startswith("fraud#prod#")
    assert fraud.ls()[1].stages == {"prod": "v0.0.2"}

    # Demoting the holder hands the stage back to the version that held it before (GTO).
    status, event = await api("DELETE", "models", "fraud", "stages", "prod")
    assert status == 200
    assert (event["kind"], event["version"], event["stage"]) == ("unassign", "v0.0.2", "prod")
    _, body = await api("GET", "models", "fraud")
    assert body["stages"] == {"prod": "v0.0.1"}

    status, event = await api("DELETE", "models", "fraud", "stages", "prod")
    assert (status, event["kind"], event["version"]) == (200, "unassign", "v0.0.1")
    _, body = await api("GET", "models", "fraud")
    assert body["stages"] == {}
    assert [v["stages"] for v in body["versions"]] == [[], []]


async def test_promote_with_a_message(api, fraud: Hub) -> None:
    body = {"version": "0.0.2", "stage": "staging", "message": "looks good"}
    status, event = await api("POST", "models", "fraud", "stages", body=body)
    assert status == 200
    assert (event["version"], event["stage"], event["message"]) == (
        "v0.0.2",
        "staging",
        "looks good",
    )


async def test_demote_an_empty_stage_is_404(api, fraud: Hub) -> None:
    status, body = await api("DELETE", "models", "fraud", "stages", "staging")
    assert status == 404
    assert body["error"] == "RESOURCE_DOES_NOT_EXIST"
    assert "stage 'staging'" in body["message"]


async def test_promote_unknown_version_is_404(api, fraud: Hub) -> None:
    status, body = await api(
        "POST", "models", "fraud", "stages", body={"version": "v9.9.9", "stage": "prod"}
    )
    assert status == 404
    assert body == {
        "error": "RESOURCE_DOES_NOT_EXIST",
        "message": "fraud has no version v9.9.9. Known versions: v0.0.1, v0.0.2.",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [({"stage": "prod"}, "'version'"), ({"version": "v0.0.1"}, "'stage'")],
)
async def test_promote_needs_version_and_stage(api, fraud: Hub, body, field: str) -> None:
    status, reply = await api("POST", "models", "fraud", "stages", body=body)
    assert status == 400
    assert reply == {"error": "INVALID_ARGUMENT", "message": f"The field {field} is required."}


async def test_promote_to_a_bad_stage_name_is_400(api, fraud: Hub) -> None:
    status, body = await api(
        "POST", "models", "fraud", "stages", body={"version": "v0.0.1", "stage": "Prod"}
    )
    assert status == 400
    assert body["message"].startswith("Invalid stage name 'Prod': it has uppercase letters.")


# -- registering ----------------------------------------------------------------------------------
@pytest.fixture
def model_file(jp_root_dir: Path, classifier) -> Path:
    folder = jp_root_dir / "work"
    folder.mkdir()
    path = folder / "model.joblib"
    joblib.dump(classifier, path)
    return path


async def test_register_a_file_of_the_server(api, hub: Hub, model_file: Path) -> None:
    request = {
        "path": "work/model.joblib",
        "name": "fraud",
        "description": "from the sidebar",
        "metrics": {"auc": 0.91, "n": 3},
        "labels": ["tabular"],
    }
    response_status, body = await api("POST", "models", body=request)
    assert response_status == 201
    assert body["tag"] == "fraud@v0.0.1"
    assert body["meta"]["name"] == "fraud" and body["meta"]["version"] == "v0.0.1"
    assert body["meta"]["flavor"] == "sklearn"
    assert body["meta"]["description"] == "from the sidebar"
    assert body["meta"]["metrics"] == {"auc": 0.91, "n": 3.0}
    assert body["meta"]["labels"] == ["tabular"]
    assert body == hub.show("fraud@v0.0.1").to_dict()

    request = {"path": str(model_file), "name": "fraud", "bump": "minor"}  # absolute, inside
    response_status, body = await api("POST", "models", body=request)
    assert response_status == 201
    assert body["tag"] == "fraud@v0.1.0"


async def test_register_with_sample_and_reference_files(
    api, hub: Hub, model_file: Path, jp_root_dir: Path, training_data
) -> None:
    X, _ = training_data
    table = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    table.head(5).to_csv(jp_root_dir / "work" / "sample.csv", index=False)
    table.to_parquet(jp_root_dir / "work" / "train.parquet")
    request = {
        "path": "work/model.joblib",
        "name": "fraud",
        "sample": "work/sample.csv",
        "reference": "work/train.parquet",
    }
    status, body = await api("POST", "models", body=request)
    assert status == 201, body
    assert [f["name"] for f in body["meta"]["signature"]["inputs"]] == ["f0", "f1", "f2", "f3"]
    assert len(hub.reference_data("fraud@v0.0.1")) == len(X)  # kept for drift detection

    (jp_root_dir / "work" / "broken.parquet").write_bytes(b"not parquet at all")
    for field, path, message in (
        ("reference", "work/missing.csv", "No data file at"),
        ("reference", "work/broken.parquet", "Cannot read broken.parquet as PARQUET:"),
        ("sample", "work/model.joblib", "Cannot read model.joblib: use a .csv or .parquet file."),
        ("reference", "../outside.csv", "is outside the Jupyter server's root directory"),
    ):
        status, body = await api("POST", "models", body={**request, field: path})
        assert status == 400 and message in body["message"], body
    assert [v.version for v in hub.versions("fraud")] == ["v0.0.1"]


async def test_register_sets_location_of_the_new_version(jp_fetch, hub, model_file) -> None:
    body = json.dumps({"path": "work/model.joblib", "name": "fraud", "version": "v1.0.0"})
    response = await jp_fetch("modelhub", "api", "models", method="POST", body=body)
    assert response.code == 201
    assert response.headers["Location"].endswith("/modelhub/api/versions/fraud%40v1.0.0")


async def test_register_an_existing_explicit_version_is_409(api, hub, model_file) -> None:
    request = {"path": "work/model.joblib", "name": "fraud", "version": "v1.0.0"}
    assert (await api("POST", "models", body=request))[0] == 201
    status, body = await api("POST", "models", body=request)
    assert status == 409
    assert body["error"] == "RESOURCE_ALREADY_EXISTS"
    assert body["message"].startswith("fraud@v1.0.0 already exists.")


@pytest.mark.parametrize("missing", ["name", "path"])
async def test_register_needs_name_and_path(api, hub, model_file, missing: str) -> None:
    request = {"path": "work/model.joblib", "name": "fraud"}
    del request[missing]
    status, body = await api("POST", "models", body=request)
    assert status == 400
    assert body == {"error": "INVALID_ARGUMENT", "message": f"The field {missing!r} is required."}


@pytest.mark.parametrize(
    "path",
    ["../outside.joblib", "work/../../outside.joblib", "/etc/passwd", "..", "."],
)
async def test_register_refuses_paths_outside_the_root(
    api, hub, model_file, jp_root_dir: Path, path: str
) -> None:
    (jp_root_dir.parent / "outside.joblib").write_bytes(model_file.read_bytes())
    status, body = await api("POST", "models", body={"path": path, "name": "fraud"})
    assert status == 400
    assert body["error"] == "INVALID_ARGUMENT"
    assert body["message"].startswith(f"The path {path!r} is ")
    assert "root directory" in body["message"]
    assert hub.ls() == []


async def test_register_refuses_a_symlink_out_of_the_root(
    api, hub, model_file, jp_root_dir: Path
) -> None:
    (jp_root_dir / "link").symlink_to(jp_root_dir.parent)
    status, body = await api("POST", "models", body={"path": "link/hub", "name": "fraud"})
    assert status == 400
    assert "outside the Jupyter server's root directory" in body["message"]


async def test_register_a_missing_file_is_404(api, hub) -> None:
    status, body = await api("POST", "models", body={"path": "nope.joblib", "name": "fraud"})
    assert status == 404
    assert body["message"].startswith("No file or folder at ")


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        (
            {"metrics": {"auc": "high"}},
            "The field 'metrics' must map names to numbers; 'auc' is a string.",
        ),
        ({"labels": "tabular"}, "The field 'labels' must be an array, not a string."),
        ({"onnx": "yes"}, "The field 'onnx' must be true or false, not a string."),
        ({"name": 3}, "The field 'name' must be a string, not a number."),
        ({"bump": "huge"}, "Invalid bump 'huge'. Use major, minor or patch."),
    ],
)
async def test_register_rejects_wrong_types(
    api, hub, model_file, request_body: dict, message: str
) -> None:
    request = {"path": "work/model.joblib", "name": "fraud", **request_body}
    status, body = await api("POST", "models", body=request)
    assert (status, body) == (400, {"error": "INVALID_ARGUMENT", "message": message})


async def test_register_rejects_unknown_fields(api, hub, model_file) -> None:
    request = {"path": "work/model.joblib", "name": "fraud", "metric": {"auc": 1}}
    status, body = await api("POST", "models", body=request)
    assert status == 400
    assert body["message"].startswith("Unknown field(s) in the request body: 'metric'.")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "The request body is not valid JSON: "),
        (b"", "The request has no body."),
        (b"[1, 2]", "The request body must be a JSON object, not an array."),
    ],
)
async def test_malformed_body_is_400(api, hub, raw: bytes, message: str) -> None:
    status, body = await api("POST", "models", raw=raw)
    assert status == 400
    assert body["error"] == "INVALID_ARGUMENT"
    assert body["message"].startswith(message)
    status, body = await api("POST", "models", "fraud", "stages", raw=raw)
    assert (status, body["error"]) == (400, "INVALID_ARGUMENT")


# -- errors -----------------------------------------------------------------------------------------
async def test_unknown_model_is_404_with_suggestions(api, fraud: Hub) -> None:
    for path in (("models", "fraudd"), ("models", "fraudd", "history"), ("versions", "fraudd")):
        status, body = await api("GET", *path)
        assert status == 404
        assert body == {
            "error": "RESOURCE_DOES_NOT_EXIST",
            "message": "No model named 'fraudd' in this hub. Did you mean 'fraud'?",
        }


async def test_unknown_version_is_404(api, fraud: Hub) -> None:
    status, body = await api("GET", "versions", "fraud@v0.0.7")
    assert status == 404
    assert body["message"] == "fraud has no version v0.0.7. Known versions: v0.0.1, v0.0.2."


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a b", "contains ' '"),
        ("UPPER", "has uppercase letters"),
        ("a..b", "contains a path character"),
        ("-x", "starts or ends with '-' or '_'"),
        ("a/b", "contains a path character"),  # %2F inside one path segment
    ],
)
async def test_bad_model_names_are_400_on_every_route(
    api, fraud: Hub, name: str, problem: str
) -> None:
    requests = [
        ("GET", ("models", name), None),
        ("GET", ("models", name, "history"), None),
        ("GET", ("versions", name), None),
        ("POST", ("models", name, "stages"), {"version": "v0.0.1", "stage": "prod"}),
        ("DELETE", ("models", name, "stages", "prod"), None),
    ]
    for method, path, body in requests:
        status, reply = await api(method, *path, body=body)
        assert status == 400, (method, path)
        assert reply["error"] == "INVALID_ARGUMENT"
        assert reply["message"].startswith(f"Invalid model name {name!r}: it {problem}")


async def test_a_bad_stage_name_in_the_url_is_400(api, fraud: Hub) -> None:
    status, body = await api("DELETE", "models", "fraud", "stages", "PROD")
    assert status == 400
    assert body["message"].startswith("Invalid stage name 'PROD'")


async def test_missing_hub_is_404_saying_how_to_create_one(api, hub_path: Path) -> None:
    for method, path, request in [
        ("GET", ("models",), None),
        ("GET", ("models", "fraud"), None),
        ("GET", ("versions", "fraud@v0.0.1"), None),
        ("POST", ("models", "fraud", "stages"), {"version": "v0.0.1", "stage": "prod"}),
    ]:
        status, body = await api(method, *path, body=request)
        assert status == 404, path
        assert body["error"] == "HUB_DOES_NOT_EXIST"
        assert body["message"].startswith(f"No model hub at {hub_path}.")
        assert f"modelhub init {hub_path}" in body["message"]


async def test_a_hub_created_after_the_server_started_is_served(api, hub_path: Path) -> None:
    assert (await api("GET", "models"))[0] == 404
    Hub.init(hub_path)
    assert await api("GET", "models") == (200, {"models": []})


async def test_unknown_endpoint_is_a_json_404(api, hub: Hub) -> None:
    status, body = await api("GET", "nothing", "here")
    assert status == 404
    assert body["error"] == "RESOURCE_DOES_NOT_EXIST"
    assert body["message"].startswith("No ModelHub API endpoint at /modelhub/api/nothing/here.")


async def test_method_not_allowed_is_a_json_405(api, hub: Hub) -> None:
    status, body = await api("DELETE", "models")
    assert status == 405
    assert body["error"] == "METHOD_NOT_ALLOWED"


# -- authentication ---------------------------------------------------------------------------------
async def test_without_the_token_a_read_is_403(jp_fetch, fraud: Hub) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("modelhub", "api", "models", headers={"Authorization": ""})
    assert info.value.code == 403
    assert json.loads(info.value.response.body)["error"] == "PERMISSION_DENIED"
    # and the same request with the token succeeds
    assert (await jp_fetch("modelhub", "api", "models")).code == 200


async def test_without_the_token_a_write_is_403_and_changes_nothing(jp_fetch, fraud: Hub) -> None:
    # A matching XSRF cookie and header get past the XSRF check: what refuses is authentication.
    headers = {"Authorization": "", "Cookie": "_xsrf=abc", "X-XSRFToken": "abc"}
    body = json.dumps({"version": "v0.0.2", "stage": "prod"})
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "modelhub",
            "api",
            "models",
            "fraud",
            "stages",
            method="POST",
            body=body,
            headers=headers,
        )
    assert info.value.code == 403
    assert "xsrf" not in info.value.response.body.decode().lower()
    assert fraud.ls()[1].stages == {"prod": "v0.0.1"}


# -- the written-down API ----------------------------------------------------------------------------
OPENAPI = Path(__file__).parent.parent / "docs" / "openapi.yaml"


def _json_schema(node: Any, components: dict[str, Any]) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema; objects must list every field they send."""
    if isinstance(node, list):
        return [_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    schema = {
        key: (
            {k: _json_schema(v, components) for k, v in value.items()}
            if key == "properties"
            else _json_schema(value, components)
        )
        for key, value in node.items()
        if key not in ("nullable", "example", "examples", "description")
    }
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
    return {"anyOf": [schema, {"type": "null"}]} if node.get("nullable") else schema


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(OPENAPI.read_text())


def test_openapi_documents_exactly_the_routes(openapi) -> None:
    from jupyter_modelhub.server.handlers import routes

    documented = {
        (re.sub(r"\{[^}]+\}", "([^/]+)", path), verb.upper())
        for path, operations in openapi["paths"].items()
        for verb in operations
        if verb in ("get", "post", "put", "patch", "delete")
    }
    served = {
        (pattern.removeprefix("/modelhub/api"), verb)
        for pattern, handler in routes()
        if not pattern.endswith("(.*)")
        for verb in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if verb.lower() in vars(handler)
    }
    assert documented == served


async def test_responses_match_the_openapi_schemas(api, fraud: Hub, openapi, model_file) -> None:
    import jsonschema

    components = openapi["components"]["schemas"]

    async def check(method: str, path: str, status: int, body: Any = None, *segments: str):
        code, reply = await api(method, *segments, body=body)
        assert code == status, reply
        operation = openapi["paths"][path][method.lower()]
        response = operation["responses"][str(status)]
        if "$ref" in response:
            response = openapi["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response["content"]["application/json"]["schema"]
        jsonschema.validate(reply, _json_schema(schema, components))

    await check("GET", "/hub", 200, None, "hub")
    await check("GET", "/models", 200, None, "models")
    await check("GET", "/models/{name}", 200, None, "models", "fraud")
    await check("GET", "/models/{name}/history", 200, None, "models", "fraud", "history")
    await check("GET", "/versions/{ref}", 200, None, "versions", "fraud#prod")
    await check("GET", "/versions/{ref}", 404, None, "versions", "fraud@v9.0.0")
    await check("GET", "/models/{name}", 400, None, "models", "UPPER")
    promote = {"version": "v0.0.2", "stage": "prod"}
    await check("POST", "/models/{name}/stages", 200, promote, "models", "fraud", "stages")
    await check(
        "DELETE", "/models/{name}/stages/{stage}", 200, None, "models", "fraud", "stages", "prod"
    )
    register = {"path": "work/model.joblib", "name": "fraud", "params": {"C": 1.0}}
    await check("POST", "/models", 201, register, "models")
    await check("POST", "/models", 409, {**register, "version": "v0.0.1"}, "models")
