"""The OpenAPI 3.0 description of the model server, served at ``/openapi.json``.

It is built for the served model: the examples use its name, version and features, so a user
(or a fuzzer such as schemathesis) can try every endpoint from the document alone.
"""

from __future__ import annotations

from typing import Any

from ..serving.service import ModelService
from ..serving.v2 import DATATYPES
from .handlers import __version__

V2_ERROR = {"$ref": "#/components/schemas/V2Error"}
MLFLOW_ERROR = {"$ref": "#/components/schemas/MlflowError"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(schema: dict[str, Any], *statuses: int) -> dict[str, Any]:
    words = {
        400: "The request does not fit the protocol or the model's signature; the message "
        "names the field.",
        404: "No such model or version here.",
        413: "The body is over the server's size limit.",
        415: "A body format the endpoint does not read.",
        503: "The server is shutting down.",
    }
    return {str(s): _json(schema, words[s]) for s in statuses}


def openapi_document(service: ModelService) -> dict[str, Any]:
    """The OpenAPI document of a server serving ``service``."""
    name, version = service.name, service.version
    schema = service.runtime.schema
    metadata = service.v2.metadata()
    example_inputs = [
        {
            "name": i["name"],
            "datatype": i["datatype"],
            "shape": [1, *i["shape"][1:]],
            "data": [0] * max(1, schema.width if len(i["shape"]) > 1 else 1)
            if i["datatype"] != "BYTES"
            else [""],
        }
        for i in metadata["inputs"]
    ]
    zero = {"float": 0.0, "int": 0, "bool": False, "str": ""}
    record = {f.name: zero[f.kind] for f in schema.features}
    model_params = [
        {
            "name": "model_name",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "example": name,
        },
    ]
    version_params = [
        *model_params,
        {
            "name": "model_version",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "example": version,
        },
    ]
    paths: dict[str, Any] = {
        "/v2/health/live": {
            "get": {
                "summary": "Liveness: the process answers.",
                "operationId": "live",
                "responses": {"200": _json({"$ref": "#/components/schemas/Live"}, "Alive.")},
            }
        },
        "/v2/health/ready": {
            "get": {
                "summary": "Readiness: the model is loaded and the server is not draining.",
                "operationId": "ready",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Ready"}, "Ready."),
                    **_errors(V2_ERROR, 503),
                },
            }
        },
        "/v2": {
            "get": {
                "summary": "Server metadata.",
                "operationId": "serverMetadata",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/ServerMetadata"}, "Metadata.")
                },
            }
        },
        "/invocations": {
            "post": {
                "summary": "MLflow scoring: predictions for a DataFrame, records, rows or CSV.",
                "operationId": "invocations",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/MlflowRequest"},
                            "example": {
                                "dataframe_split": {
                                    "columns": schema.names,
                                    "data": [list(record.values())],
                                }
                            },
                        },
                        "text/csv": {
                            "schema": {"type": "string"},
                            "example": ",".join(schema.names)
                            + "\n"
                            + ",".join(str(v) for v in record.values())
                            + "\n",
                        },
                    },
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/MlflowResponse"}, "Predictions."),
                    **_errors(MLFLOW_ERROR, 400, 413, 415),
                },
            }
        },
        "/ping": {"get": _ping("pingMlflow")},
        "/health": {"get": _ping("healthMlflow")},
        "/feedback": {
            "post": {
                "summary": "Outcomes for A/B analysis, by request id or sticky key.",
                "operationId": "feedback",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Outcome"},
                                    {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Outcome"},
                                        "maxItems": 1000,
                                    },
                                ]
                            },
                            "example": {"request_id": "abc-1", "outcome": 1},
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "accepted": {"type": "integer"},
                                "dropped": {"type": "integer"},
                            },
                        },
                        "How many outcomes were recorded.",
                    ),
                    **_errors(V2_ERROR, 400, 413, 503),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format).",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Metrics.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
    }
    for prefix, params, suffix in (
        ("/v2/models/{model_name}", model_params, ""),
        ("/v2/models/{model_name}/versions/{model_version}", version_params, "Version"),
    ):
        paths[prefix] = {
            "get": {
                "summary": "Model metadata: versions, platform, input and output tensors.",
                "operationId": f"modelMetadata{suffix}",
                "parameters": params,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/ModelMetadata"}, "Metadata."),
                    **_errors(V2_ERROR, 404),
                },
            }
        }
        paths[f"{prefix}/ready"] = {
            "get": {
                "summary": "Model readiness.",
                "operationId": f"modelReady{suffix}",
                "parameters": params,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/ModelReady"}, "Ready."),
                    **_errors(V2_ERROR, 404, 503),
                },
            }
        }
        paths[f"{prefix}/config"] = {
            "get": {
                "summary": "Triton-style model configuration.",
                "operationId": f"modelConfig{suffix}",
                "parameters": params,
                "responses": {
                    "200": _json({"type": "object"}, "Configuration."),
                    **_errors(V2_ERROR, 404),
                },
            }
        }
        paths[f"{prefix}/infer"] = {
            "post": {
                "summary": "Open Inference Protocol inference.",
                "description": "One tensor [rows, features] (any name; `input` by convention) "
                "or one tensor per feature named like the model's features ([rows] or "
                "[rows, 1]; BYTES for strings). Triton's binary tensor extension is accepted "
                "with the Inference-Header-Content-Length header.",
                "operationId": f"infer{suffix}",
                "parameters": params,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/InferenceRequest"},
                            "example": {"id": "42", "inputs": example_inputs},
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {"$ref": "#/components/schemas/InferenceResponse"}, "Predictions."
                    ),
                    **_errors(V2_ERROR, 400, 404, 413),
                },
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"jupyter-modelhub model server: {name} {version}",
            "version": __version__,
            "description": "Open Inference Protocol v2 and MLflow scoring for one model version.",
        },
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


def _ping(operation: str) -> dict[str, Any]:
    return {
        "summary": "MLflow health check.",
        "operationId": operation,
        "responses": {
            "200": {"description": "Loaded.", "content": {"application/json": {}}},
            **_errors(V2_ERROR, 503),
        },
    }


def _schemas() -> dict[str, Any]:
    tensor_data: dict[str, Any] = {
        "description": "Values in row-major order, flat or nested.",
        "oneOf": [
            {"type": "array", "items": {}},
            {"type": "number"},
            {"type": "string"},
            {"type": "boolean"},
        ],
    }
    parameters = {"type": "object", "additionalProperties": True}
    shape = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}
    datatype = {"type": "string", "enum": list(DATATYPES)}
    tensor_meta = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": datatype,
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    return {
        "Outcome": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": 200},
                "key": {"type": "string", "minLength": 1, "maxLength": 200},
                "outcome": {"oneOf": [{"type": "number"}, {"type": "boolean"}]},
            },
            "required": ["outcome"],
            "additionalProperties": False,
        },
        "V2Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "description": "What is wrong, naming the field."},
                "code": {"type": "string"},
            },
        },
        "MlflowError": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {
                "error_code": {"type": "string"},
                "message": {"type": "string"},
                "code": {"type": "string"},
            },
        },
        "Live": {
            "type": "object",
            "required": ["live"],
            "properties": {"live": {"type": "boolean"}},
        },
        "Ready": {
            "type": "object",
            "required": ["ready"],
            "properties": {"ready": {"type": "boolean"}},
        },
        "ModelReady": {
            "type": "object",
            "required": ["name", "ready"],
            "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        },
        "ServerMetadata": {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": tensor_meta},
                "outputs": {"type": "array", "items": tensor_meta},
                "parameters": parameters,
            },
        },
        "InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": parameters,
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "shape", "datatype"],
                        "properties": {
                            "name": {"type": "string"},
                            "shape": shape,
                            "datatype": datatype,
                            "parameters": parameters,
                            "data": tensor_data,
                        },
                    },
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "parameters": parameters},
                    },
                },
            },
        },
        "InferenceResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": parameters,
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "shape", "datatype"],
                        "properties": {
                            "name": {"type": "string"},
                            "shape": {"type": "array", "items": {"type": "integer"}},
                            "datatype": datatype,
                            "parameters": parameters,
                            "data": {"type": "array"},
                        },
                    },
                },
            },
        },
        "MlflowRequest": {
            "type": "object",
            "description": "Exactly one of the four fields.",
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array", "items": {}}},
                        "index": {"type": "array", "items": {}},
                    },
                },
                "dataframe_records": {"type": "array", "items": {"type": "object"}},
                "instances": {"oneOf": [{"type": "array", "items": {}}, {"type": "object"}]},
                "inputs": {"oneOf": [{"type": "array", "items": {}}, {"type": "object"}]},
                "params": {"type": "object"},
            },
        },
        "MlflowResponse": {
            "type": "object",
            "required": ["predictions"],
            "properties": {"predictions": {"type": "array"}},
        },
    }
