"""Fuzzing the model server's endpoints: whatever a client sends, never a 5xx.

Hypothesis generates bodies from anything-goes JSON to near-valid requests (right names,
shapes and types with one thing wrong) and raw bytes; every answer must be a non-5xx whose
JSON body matches the schema that ``/openapi.json`` documents for that status.
"""

from __future__ import annotations

import http.client
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_modelserver import (  # the servers and their models
    ServerProcess,
    call_json,
    pipe_server,
    pipeline_model,
    served_hub,
    server_tmp,
    sk_server,
)

__all__ = ["pipe_server", "pipeline_model", "served_hub", "server_tmp", "sk_server"]

FUZZ = settings(
    max_examples=int(os.environ.get("MODELHUB_FUZZ_EXAMPLES", "250")),  # more: a deeper search
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLF_FEATURES = ("f0", "f1", "f2", "f3")
PIPE_FEATURES = ("age", "income", "score", "visits", "city")
DATATYPES = ["BOOL", "UINT8", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers(-1000, 1000)
cells = numbers | scalars


@st.composite
def tensors(draw: st.DrawFn, names: tuple[str, ...]) -> dict[str, Any]:
    """A v2 input tensor: usually plausible, with any field possibly wrong."""
    rows = draw(st.integers(0, 4))
    width = draw(st.sampled_from([1, 4, 5, len(names)]))
    shape: Any = draw(st.sampled_from([[rows, width], [rows], [rows, 1], [rows * width]]))
    count = math.prod(shape)
    data: Any = draw(
        st.lists(numbers, min_size=count, max_size=count)
        | st.lists(st.text(max_size=6), min_size=count, max_size=count)
        | st.lists(cells, min_size=count, max_size=count)
    )
    tensor: dict[str, Any] = {
        "name": draw(st.sampled_from(["input", *names]) | st.text(max_size=6)),
        "shape": shape,
        "datatype": draw(st.sampled_from(DATATYPES) | st.text(max_size=5)),
        "data": data,
    }
    if draw(st.booleans()):
        key = draw(st.sampled_from(["name", "shape", "datatype", "data", "parameters"]))
        tensor[key] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        del tensor[draw(st.sampled_from(sorted(tensor)))]
    return tensor


KINDS = {"f0": "float", "f1": "float", "f2": "float", "f3": "float", "age": "float",
         "income": "float", "score": "float", "visits": "int", "city": "str"}  # fmt: skip
VALUES = {
    "float": st.floats(-1e6, 1e6, allow_nan=False),
    "int": st.integers(-100, 100),
    "str": st.sampled_from(["oslo", "paris", "lima", "", "rome"]),
}
V2_TYPES = {"float": "FP64", "int": "INT64", "str": "BYTES"}


@st.composite
def valid_rows(draw: st.DrawFn, names: tuple[str, ...]) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 4))
    return [{name: draw(VALUES[KINDS[name]]) for name in names} for _ in range(n)]


@st.composite
def mutated(draw: st.DrawFn, body: Any) -> Any:
    """``body`` with zero to two of its leaves or containers replaced by anything."""
    for _ in range(draw(st.integers(0, 2))):
        path: list[Any] = []
        node = body
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            path.append(key)
            node = node[key]
        if not path:
            continue
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.integers(0, 4)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values | cells)
    return body


@st.composite
def near_valid_v2(draw: st.DrawFn, names: tuple[str, ...]) -> Any:
    rows = draw(valid_rows(names))
    if all(KINDS[n] == "float" for n in names):
        datatype = draw(st.sampled_from(["FP32", "FP64"]))
        body = {
            "inputs": [
                {
                    "name": "input",
                    "shape": [len(rows), len(names)],
                    "datatype": datatype,
                    "data": [row[n] for row in rows for n in names],
                }
            ]
        }
    else:
        body = {
            "inputs": [
                {
                    "name": n,
                    "shape": [len(rows)],
                    "datatype": V2_TYPES[KINDS[n]],
                    "data": [row[n] for row in rows],
                }
                for n in names
            ]
        }
    return draw(mutated(body))


@st.composite
def near_valid_mlflow(draw: st.DrawFn, names: tuple[str, ...]) -> Any:
    rows = draw(valid_rows(names))
    key = draw(st.sampled_from(["split", "records", "instances", "inputs"]))
    body: Any
    if key == "split":
        body = {
            "dataframe_split": {
                "columns": list(names),
                "data": [[r[n] for n in names] for r in rows],
            }
        }
    elif key == "records":
        body = {"dataframe_records": rows}
    elif key == "instances":
        body = {"instances": rows}
    else:
        body = {"inputs": {n: [r[n] for r in rows] for n in names}}
    return draw(mutated(body))


@st.composite
def v2_bodies(draw: st.DrawFn, names: tuple[str, ...]) -> Any:
    if draw(st.booleans()):
        return draw(near_valid_v2(names))
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    body: dict[str, Any] = {"inputs": draw(st.lists(tensors(names), min_size=0, max_size=6))}
    if draw(st.booleans()):
        body["id"] = draw(scalars)
    if draw(st.booleans()):
        body["outputs"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["predict", "predict_proba", "x"])},
                    optional={"parameters": st.dictionaries(st.text(max_size=12), scalars)},
                ),
                max_size=3,
            )
            | json_values
        )
    if draw(st.booleans()):
        body["parameters"] = draw(
            st.fixed_dictionaries({"binary_data_output": scalars}) | json_values
        )
    return body


@st.composite
def mlflow_bodies(draw: st.DrawFn, names: tuple[str, ...]) -> Any:
    if draw(st.booleans()):
        return draw(near_valid_mlflow(names))
    choice = draw(st.integers(0, 6))
    columns = draw(st.lists(st.sampled_from(names) | st.text(max_size=4), max_size=6))
    rows = st.lists(
        st.lists(cells, min_size=len(names), max_size=len(names)) | json_values, max_size=4
    )
    records = st.lists(
        st.dictionaries(st.sampled_from(names) | st.text(max_size=4), cells, max_size=6)
        | json_values,
        max_size=4,
    )
    if choice == 0:
        return draw(json_values)
    if choice == 1:
        return {"dataframe_split": {"columns": columns, "data": draw(rows)}}
    if choice == 2:
        return {"dataframe_split": draw(json_values)}
    if choice == 3:
        return {"dataframe_records": draw(records | json_values)}
    key = draw(st.sampled_from(["instances", "inputs"]))
    column_dict = st.dictionaries(
        st.sampled_from(names), st.lists(cells, max_size=3) | cells, max_size=6
    )
    return {key: draw(rows | records | column_dict | json_values)}


# -- the fuzzing client -------------------------------------------------------------------------------
class Fuzzer:
    """Posts bodies on one keep-alive connection and checks each answer against the docs."""

    def __init__(self, server: ServerProcess) -> None:
        self.port = server.port
        status, self.doc = call_json(self.port, "GET", "/openapi.json")
        assert status == 200
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.statuses: dict[int, int] = {}

    def post(self, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        try:
            self.conn.request("POST", path, body=raw, headers=headers)
            response = self.conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request("POST", path, body=raw, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        status = response.status
        self.statuses[status] = self.statuses.get(status, 0) + 1
        assert status < 500, (status, path, raw[:300], data[:500])
        if response.getheader("Content-Type", "").startswith("application/octet-stream"):
            return status, None  # binary outputs: checked by the tritonclient tests
        body = json.loads(data)
        self.check(path, status, body)
        return status, body

    def check(self, path: str, status: int, body: Any) -> None:
        template = "/invocations" if path == "/invocations" else "/v2/models/{model_name}/infer"
        responses = self.doc["paths"][template]["post"]["responses"]
        assert str(status) in responses, f"undocumented status {status} for {path}: {body}"
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        jsonschema.validate(body, {**schema, "components": self.doc["components"]})

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def sk_fuzzer(sk_server) -> Iterator[Fuzzer]:
    fuzzer = Fuzzer(sk_server)
    yield fuzzer
    fuzzer.close()


@pytest.fixture
def pipe_fuzzer(pipe_server) -> Iterator[Fuzzer]:
    fuzzer = Fuzzer(pipe_server)
    yield fuzzer
    fuzzer.close()


JSON = {"Content-Type": "application/json"}


@FUZZ
@given(body=v2_bodies(CLF_FEATURES))
def test_fuzz_v2_infer_on_an_array_model(sk_fuzzer: Fuzzer, body: Any) -> None:
    sk_fuzzer.post("/v2/models/clf/infer", json.dumps(body).encode(), JSON)


@FUZZ
@given(body=v2_bodies(PIPE_FEATURES))
def test_fuzz_v2_infer_on_a_dataframe_model(pipe_fuzzer: Fuzzer, body: Any) -> None:
    pipe_fuzzer.post("/v2/models/pipe/infer", json.dumps(body).encode(), JSON)


@FUZZ
@given(body=mlflow_bodies(CLF_FEATURES))
def test_fuzz_mlflow_invocations_on_an_array_model(sk_fuzzer: Fuzzer, body: Any) -> None:
    sk_fuzzer.post("/invocations", json.dumps(body).encode(), JSON)


@FUZZ
@given(body=mlflow_bodies(PIPE_FEATURES))
def test_fuzz_mlflow_invocations_on_a_dataframe_model(pipe_fuzzer: Fuzzer, body: Any) -> None:
    pipe_fuzzer.post("/invocations", json.dumps(body).encode(), JSON)


@FUZZ
@given(
    raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    path=st.sampled_from(["/v2/models/pipe/infer", "/invocations"]),
    content_type=st.sampled_from(
        ["application/json", "text/csv", "text/csv; charset=latin-1", "text/plain", ""]
    ),
    header_length=st.none()
    | st.integers(-5, 400).map(str)
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=4),
)
def test_fuzz_raw_bodies_and_binary_headers(
    pipe_fuzzer: Fuzzer, raw: bytes, path: str, content_type: str, header_length: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if header_length is not None and path != "/invocations":
        headers["Inference-Header-Content-Length"] = header_length
    pipe_fuzzer.post(path, raw, headers)


@FUZZ
@given(
    header=st.lists(st.sampled_from(PIPE_FEATURES) | st.text(max_size=5), max_size=7),
    rows=st.lists(st.lists(st.text(max_size=6) | numbers.map(str), max_size=7), max_size=5),
)
def test_fuzz_csv_bodies(pipe_fuzzer: Fuzzer, header: list[str], rows: list[list[str]]) -> None:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    pipe_fuzzer.post("/invocations", out.getvalue().encode(), {"Content-Type": "text/csv"})


def test_fuzzing_reached_the_success_paths_too(sk_server) -> None:
    """A near-valid body succeeds: the strategies are not all rejected at the first check."""
    fuzzer = Fuzzer(sk_server)
    try:
        body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}]}
        assert fuzzer.post("/v2/models/clf/infer", json.dumps(body).encode(), JSON)[0] == 200
    finally:
        fuzzer.close()
