"""The model server as its users meet it: a real process, real HTTP, real clients.

Each server is ``python -m jupyter_modelhub.modelserver`` started by the test on 127.0.0.1 with
a free port; the tests wait for its ``MODELHUB-READY`` line and poll with deadlines, never sleep.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import jupyter_modelhub
from jupyter_modelhub import Hub
from jupyter_modelhub.serving.contract import Ready, parse_status_line

REPO = Path(jupyter_modelhub.__file__).resolve().parent.parent
STARTUP_SECONDS = 90.0


# -- a server process -----------------------------------------------------------------------------
class ServerProcess:
    """``python -m jupyter_modelhub.modelserver ARGS`` with its stdout lines read in a thread."""

    def __init__(self, *args: str, pass_fds: tuple[int, ...] = (), tmp: Path | None = None):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.stderr_path = Path(tmp or "/tmp") / f"modelserver-{time.monotonic_ns()}.err"
        self._stderr = open(self.stderr_path, "w+b")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_modelhub.modelserver", *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            pass_fds=pass_fds,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready: dict[str, Any] = {}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = STARTUP_SECONDS) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no line from the server in {timeout}s; {self.stderr()}"
            ) from None

    def wait_ready(self) -> dict[str, Any]:
        line = self.next_line()
        assert line is not None and line.startswith("MODELHUB-READY "), (line, self.stderr())
        self.ready_line = line
        self.ready = json.loads(line.removeprefix("MODELHUB-READY "))
        return self.ready

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    @property
    def admin_port(self) -> int:
        return int(self.ready["admin_port"])

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._stderr.close()


def start_server(*args: str, **kwargs: Any) -> ServerProcess:
    server = ServerProcess(*args, **kwargs)
    try:
        server.wait_ready()
    except BaseException:
        server.close()
        raise
    return server


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, headers (lower-case names) and body."""
    if raw is None and body is not None:
        raw = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hdrs = {"Content-Type": "application/json"} if raw is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=raw, headers=hdrs)
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


def call_json(
    port: int, method: str, path: str, body: Any = None, **kwargs: Any
) -> tuple[int, Any]:
    status, _, data = call(port, method, path, body, **kwargs)
    return status, json.loads(data)


def scrape(port: int) -> dict[str, float]:
    """``/metrics`` as {series-with-labels: value}."""
    status, _, data = call(port, "GET", "/metrics")
    assert status == 200
    values = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


def metric(values: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the series of ``name`` whose labels include ``labels``."""
    total = 0.0
    for series, value in values.items():
        base, _, rest = series.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


def poll(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def v2_matrix(x: np.ndarray, datatype: str = "FP64", **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(x.shape),
                "datatype": datatype,
                "data": x.ravel().tolist(),
            }
        ],
        **extra,
    }


def outputs_of(answer: dict[str, Any]) -> dict[str, np.ndarray]:
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in answer["outputs"]}


def raw_request(path: str, body: dict[str, Any], request_id: str) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Request-Id: {request_id}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    reader = sock.makefile("rb")
    response = http.client.HTTPResponse(sock)
    response.fp = reader  # type: ignore[assignment]
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


# -- models and servers -------------------------------------------------------------------------------
def city_frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["age", "income", "score"])
    frame["visits"] = rng.integers(0, 10, size=n)
    frame["city"] = rng.choice(["paris", "oslo", "lima"], size=n)
    return frame


@pytest.fixture(scope="module")
def pipeline_model():
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = city_frame(200)
    y = (frame["age"] + (frame["city"] == "oslo") > 0.3).astype(int)
    encoder = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["city"]), remainder="passthrough"
    )
    return make_pipeline(encoder, LogisticRegression()).fit(frame, y)


@pytest.fixture(scope="module")
def served_hub(tmp_path_factory, classifier, training_data, pipeline_model) -> Hub:
    hub = Hub.init(tmp_path_factory.mktemp("served") / "hub")
    X, _ = training_data
    hub.register(classifier, "clf", sample=X, onnx=True)
    hub.register(pipeline_model, "pipe", sample=city_frame(20))
    return hub


@pytest.fixture(scope="module")
def server_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="module")
def sk_server(served_hub: Hub, server_tmp: Path) -> Iterator[ServerProcess]:
    """The classifier on scikit-learn, with a prediction log flushed every 0.2 s."""
    server = start_server(
        "clf", "--hub", str(served_hub.path), "--port", "0", "--runtime", "sklearn",
        "--deployment", "fraud-prod", "--variant", "blue",
        "--log-dir", str(server_tmp / "predictions"), "--log-flush-seconds", "0.2",
        "--max-wait-ms", "5",
        tmp=server_tmp,
    )  # fmt: skip
    yield server
    server.terminate()


@pytest.fixture(scope="module")
def onnx_server(served_hub: Hub, server_tmp: Path) -> Iterator[ServerProcess]:
    """The same classifier on onnxruntime (the default when a version has an ONNX file)."""
    server = start_server(
        "clf@v0.0.1", "--hub", str(served_hub.path), "--port", "0", "--max-body-mb", "1",
        tmp=server_tmp,
    )  # fmt: skip
    yield server
    server.terminate()


@pytest.fixture(scope="module")
def pipe_server(served_hub: Hub, server_tmp: Path) -> Iterator[ServerProcess]:
    """A DataFrame pipeline with a string feature."""
    server = start_server("pipe", "--hub", str(served_hub.path), "--port", "0", tmp=server_tmp)
    yield server
    server.terminate()


# -- health and metadata -------------------------------------------------------------------------------
def test_ready_line_names_port_admin_port_pid_and_version(sk_server: ServerProcess) -> None:
    assert set(sk_server.ready) == {"port", "admin_port", "pid", "version"}
    assert sk_server.ready["pid"] == sk_server.proc.pid
    assert sk_server.ready["version"] == "v0.0.1"
    assert sk_server.port != sk_server.admin_port
    ready = parse_status_line(sk_server.ready_line)  # what a supervisor reads
    assert ready == Ready(sk_server.port, sk_server.admin_port, sk_server.proc.pid, "v0.0.1")
    assert sk_server.next_line() is None  # exactly one line, then stdout is closed


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        ("/v2/models/clf/ready", {"name": "clf", "ready": True}),
        ("/v2/models/clf/versions/v0.0.1/ready", {"name": "clf", "ready": True}),
        ("/v2/models/fraud-prod/ready", {"name": "clf", "ready": True}),
    ],
)
def test_health_endpoints_on_both_ports(sk_server: ServerProcess, path: str, expected: Any) -> None:
    for port in (sk_server.port, sk_server.admin_port):
        assert call_json(port, "GET", path) == (200, expected)


def test_v2_model_metadata_describes_inputs_and_outputs(sk_server: ServerProcess) -> None:
    status, meta = call_json(sk_server.port, "GET", "/v2/models/clf")
    assert status == 200
    assert meta == {
        "name": "clf",
        "versions": ["v0.0.1"],
        "platform": "sklearn",
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
        ],
        "parameters": {
            "input_kind": "ndarray",
            "features": [{"name": f"f{i}", "dtype": "float64"} for i in range(4)],
        },
    }
    assert call_json(sk_server.port, "GET", "/v2/models/clf/versions/v0.0.1")[1] == meta
    status, server_meta = call_json(sk_server.port, "GET", "/v2")
    assert status == 200 and server_meta["name"] == "jupyter-modelhub"


def test_pipeline_metadata_lists_one_tensor_per_feature(pipe_server: ServerProcess) -> None:
    status, meta = call_json(pipe_server.port, "GET", "/v2/models/pipe")
    assert status == 200
    assert meta["inputs"] == [
        {"name": "age", "datatype": "FP64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "score", "datatype": "FP64", "shape": [-1]},
        {"name": "visits", "datatype": "INT64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
    ]


# -- Open Inference Protocol v2 ------------------------------------------------------------------------
def test_v2_infer_equals_the_models_own_predictions(sk_server, classifier, training_data) -> None:
    X, _ = training_data
    rows = X[:7]
    status, answer = call_json(sk_server.port, "POST", "/v2/models/clf/infer", v2_matrix(rows))
    assert status == 200
    assert answer["model_name"] == "clf" and answer["model_version"] == "v0.0.1"
    out = outputs_of(answer)
    assert [o["datatype"] for o in answer["outputs"]] == ["INT64", "FP64"]
    np.testing.assert_array_equal(out["predict"], classifier.predict(rows))
    np.testing.assert_array_equal(out["predict_proba"], classifier.predict_proba(rows))


def test_v2_infer_accepts_nested_data_int_and_fp32_tensors(sk_server, classifier) -> None:
    rows = np.array([[1, -2, 3, 0], [0, 5, -1, 2]])
    for datatype, data in (("INT64", rows.tolist()), ("FP32", rows.astype(np.float32).tolist())):
        body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": datatype, "data": data}]}
        status, answer = call_json(sk_server.port, "POST", "/v2/models/clf/infer", body)
        assert status == 200, answer
        np.testing.assert_array_equal(outputs_of(answer)["predict"], classifier.predict(rows))


def test_v2_versioned_infer_and_output_selection(sk_server, classifier, training_data) -> None:
    X, _ = training_data
    body = v2_matrix(X[:3], outputs=[{"name": "predict_proba"}])
    status, answer = call_json(sk_server.port, "POST", "/v2/models/clf/versions/v0.0.1/infer", body)
    assert status == 200
    assert [o["name"] for o in answer["outputs"]] == ["predict_proba"]
    np.testing.assert_array_equal(
        outputs_of(answer)["predict_proba"], classifier.predict_proba(X[:3])
    )


def test_v2_infer_on_onnx_equals_onnxruntime(onnx_server, served_hub, training_data) -> None:
    import onnxruntime

    X, _ = training_data
    rows = X[:9].astype(np.float32)
    session = onnxruntime.InferenceSession(
        str(served_hub.artifact_path("clf") / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    label, proba = session.run(None, {"input": rows})
    status, meta = call_json(onnx_server.port, "GET", "/v2/models/clf")
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    status, answer = call_json(
        onnx_server.port, "POST", "/v2/models/clf/infer", v2_matrix(rows, "FP32")
    )
    assert status == 200
    out = outputs_of(answer)
    np.testing.assert_array_equal(out["predict"], label)
    np.testing.assert_array_equal(out["predict_proba"].astype(np.float32), proba)


def test_v2_one_tensor_per_feature_with_bytes(pipe_server, pipeline_model) -> None:
    frame = city_frame(6, seed=7)
    inputs = []
    for name, dtype in (
        ("age", "FP64"), ("income", "FP64"), ("score", "FP64"), ("visits", "INT64"), ("city", "BYTES")
    ):  # fmt: skip
        shape = [6, 1] if name == "score" else [6]  # [N] and [N, 1] both work
        inputs.append(
            {"name": name, "shape": shape, "datatype": dtype, "data": frame[name].tolist()}
        )
    inputs.reverse()  # any order
    status, answer = call_json(
        pipe_server.port, "POST", "/v2/models/pipe/infer", {"inputs": inputs}
    )
    assert status == 200, answer
    out = outputs_of(answer)
    np.testing.assert_array_equal(out["predict"], pipeline_model.predict(frame))
    np.testing.assert_array_equal(out["predict_proba"], pipeline_model.predict_proba(frame))


def test_request_ids_are_honoured_or_made(sk_server, training_data) -> None:
    X, _ = training_data
    port = sk_server.port
    status, headers, data = call(port, "POST", "/v2/models/clf/infer", v2_matrix(X[:1], id="req-7"))
    assert (
        status == 200 and json.loads(data)["id"] == "req-7" and headers["x-request-id"] == "req-7"
    )
    status, headers, data = call(
        port, "POST", "/v2/models/clf/infer", v2_matrix(X[:1]), headers={"X-Request-Id": "trace-1"}
    )
    assert json.loads(data)["id"] == "trace-1" and headers["x-request-id"] == "trace-1"
    first = call(port, "POST", "/v2/models/clf/infer", v2_matrix(X[:1]))
    second = call(port, "POST", "/invocations", {"inputs": X[:1].tolist()})
    made = [first[1]["x-request-id"], second[1]["x-request-id"]]
    assert made[0] != made[1] and json.loads(first[2])["id"] == made[0]
    status, headers, _ = call(port, "GET", "/nowhere", headers={"X-Request-Id": "lost-1"})
    assert status == 404 and headers["x-request-id"] == "lost-1"


# -- Triton's client -------------------------------------------------------------------------------------
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_http_infers_unchanged(sk_server, classifier, training_data, binary) -> None:
    tritonclient = pytest.importorskip("tritonclient.http")
    X, _ = training_data
    client = tritonclient.InferenceServerClient(f"127.0.0.1:{sk_server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("clf") and client.is_model_ready("clf", "v0.0.1")
        assert client.get_model_metadata("clf")["platform"] == "sklearn"
        assert client.get_model_config("clf")["input"][0]["data_type"] == "TYPE_FP64"
        tensor = tritonclient.InferInput("input", [5, 4], "FP64")
        tensor.set_data_from_numpy(X[:5], binary_data=binary)
        outputs = [
            tritonclient.InferRequestedOutput("predict", binary_data=binary),
            tritonclient.InferRequestedOutput("predict_proba", binary_data=binary),
        ]
        result = client.infer("clf", [tensor], outputs=outputs, request_id="t-1")
        np.testing.assert_array_equal(result.as_numpy("predict"), classifier.predict(X[:5]))
        np.testing.assert_array_equal(
            result.as_numpy("predict_proba"), classifier.predict_proba(X[:5])
        )
        assert result.get_response()["id"] == "t-1"
        default = client.infer("clf", [tensor])  # no outputs named: all, binary
        np.testing.assert_array_equal(default.as_numpy("predict"), classifier.predict(X[:5]))
        for algorithm in ("gzip", "deflate"):  # compressed request bodies
            squeezed = client.infer(
                "clf",
                [tensor],
                request_compression_algorithm=algorithm,
                response_compression_algorithm=algorithm,
            )
            np.testing.assert_array_equal(squeezed.as_numpy("predict"), classifier.predict(X[:5]))
        with pytest.raises(tritonclient.InferenceServerException, match="does not match"):
            bad = tritonclient.InferInput("input", [1, 3], "FP64")
            bad.set_data_from_numpy(X[:1, :3], binary_data=binary)
            client.infer("clf", [bad])
    finally:
        client.close()


def test_tritonclient_sends_bytes_tensors_per_feature(pipe_server, pipeline_model) -> None:
    tritonclient = pytest.importorskip("tritonclient.http")
    frame = city_frame(4, seed=3)
    client = tritonclient.InferenceServerClient(f"127.0.0.1:{pipe_server.port}")
    try:
        inputs = []
        for name in ("age", "income", "score"):
            tensor = tritonclient.InferInput(name, [4], "FP64")
            tensor.set_data_from_numpy(frame[name].to_numpy())
            inputs.append(tensor)
        visits = tritonclient.InferInput("visits", [4], "INT64")
        visits.set_data_from_numpy(frame["visits"].to_numpy(np.int64))
        city = tritonclient.InferInput("city", [4, 1], "BYTES")
        city.set_data_from_numpy(frame["city"].to_numpy(object).reshape(-1, 1))
        result = client.infer("pipe", [*inputs, visits, city])
        np.testing.assert_array_equal(result.as_numpy("predict"), pipeline_model.predict(frame))
    finally:
        client.close()


# -- MLflow scoring -----------------------------------------------------------------------------------------
def mlflow_bodies(x: np.ndarray) -> dict[str, tuple[bytes, str]]:
    columns = [f"f{i}" for i in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=columns)
    reordered = frame[columns[::-1]]

    def js(doc: Any) -> tuple[bytes, str]:
        return json.dumps(doc).encode(), "application/json"

    return {
        "dataframe_split": js({"dataframe_split": frame.to_dict(orient="split")}),
        "dataframe_split_reordered": js({"dataframe_split": reordered.to_dict(orient="split")}),
        "dataframe_split_no_columns": js({"dataframe_split": {"data": x.tolist()}}),
        "dataframe_records": js({"dataframe_records": frame.to_dict(orient="records")}),
        "instances_rows": js({"instances": x.tolist()}),
        "instances_records": js({"instances": frame.to_dict(orient="records")}),
        "inputs_rows": js({"inputs": x.tolist()}),
        "inputs_columns": js({"inputs": frame.to_dict(orient="list")}),
        "csv": (frame.to_csv(index=False).encode(), "text/csv"),
        "csv_with_index": (frame.to_csv().encode(), "text/csv; charset=utf-8"),
    }


@pytest.mark.parametrize("shape", sorted(mlflow_bodies(np.zeros((1, 4)))))
def test_mlflow_invocations_shapes(sk_server, classifier, training_data, shape) -> None:
    X, _ = training_data
    rows = X[10:16]
    raw, content_type = mlflow_bodies(rows)[shape]
    status, headers, data = call(
        sk_server.port, "POST", "/invocations", raw=raw, headers={"Content-Type": content_type}
    )
    assert status == 200, data
    assert headers["content-type"] == "application/json"
    assert json.loads(data) == {"predictions": classifier.predict(rows).tolist()}


@pytest.mark.parametrize("shape", ["dataframe_split", "dataframe_records", "csv"])
def test_mlflow_invocations_on_a_dataframe_model(pipe_server, pipeline_model, shape) -> None:
    frame = city_frame(5, seed=11)
    body: dict[str, Any] = {
        "dataframe_split": {"dataframe_split": frame.to_dict(orient="split")},
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
    }.get(shape, {})
    if shape == "csv":
        raw, content_type = frame.to_csv(index=False).encode(), "text/csv"
    else:
        raw, content_type = json.dumps(body).encode(), "application/json"
    status, _, data = call(
        pipe_server.port, "POST", "/invocations", raw=raw, headers={"Content-Type": content_type}
    )
    assert status == 200, data
    assert json.loads(data) == {"predictions": pipeline_model.predict(frame).tolist()}


# -- validation: every bad payload is a 4xx that names the field ------------------------------------------------
V2 = "/v2/models/clf/infer"
PIPE_V2 = "/v2/models/pipe/infer"
ROW = [0.1, 0.2, 0.3, 0.4]


def _pipe_inputs(**override: Any) -> dict[str, Any]:
    tensors = {
        "age": {"name": "age", "shape": [1], "datatype": "FP64", "data": [30.0]},
        "income": {"name": "income", "shape": [1], "datatype": "FP64", "data": [1.0]},
        "score": {"name": "score", "shape": [1], "datatype": "FP64", "data": [0.5]},
        "visits": {"name": "visits", "shape": [1], "datatype": "INT64", "data": [3]},
        "city": {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["oslo"]},
    }
    for name, value in override.items():
        if value is None:
            del tensors[name]
        else:
            tensors[name] = {**tensors[name], **value}
    return {"inputs": list(tensors.values())}


INVALID: list[tuple[str, str, Any, int, str]] = [
    # (server, path, body (bytes = raw JSON), status, message fragment)
    ("sk", V2, b"{not json", 400, "body: invalid JSON"),
    ("sk", V2, b"", 400, "body: empty body"),
    ("sk", V2, [1, 2], 400, "body: expected a JSON object with an 'inputs' list"),
    ("sk", V2, {"inputs": []}, 400, "inputs: required: a non-empty list"),
    (
        "sk",
        V2,
        {"inputs": [{"shape": [1, 4], "datatype": "FP64", "data": ROW}]},
        400,
        "inputs[0].name: required",
    ),
    (
        "sk",
        V2,
        {"inputs": [{"name": "input", "shape": [1, -4], "datatype": "FP64", "data": ROW}]},
        400,
        "inputs[0].shape: required: a list of non-negative integers",
    ),
    (
        "sk",
        V2,
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FLOAT", "data": ROW}]},
        400,
        "inputs[0].datatype: must be one of BOOL",
    ),
    (
        "sk",
        V2,
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64"}]},
        400,
        "inputs[0].data: required",
    ),
    (
        "sk",
        V2,
        {
            "inputs": [
                {"name": "input", "shape": [2, 3], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6]}
            ]
        },
        400,
        "inputs[0].shape: [2, 3] does not match the model's input [-1, 4] (4 features: f0, f1, f2, f3)",
    ),
    (
        "sk",
        V2,
        {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": ROW}]},
        400,
        "inputs[0].shape: [2, 4] holds 8 values but 'input' has 4",
    ),
    (
        "sk",
        V2,
        {
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ["a", "b", "c", "d"]}
            ]
        },
        400,
        "inputs[0].data: FP64 values must be numbers, got strings",
    ),
    (
        "sk",
        V2,
        {
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "INT64", "data": [1.5, 2, 3, 4]}
            ]
        },
        400,
        "inputs[0].data: INT64 values must be integers, got numbers",
    ),
    (
        "sk",
        V2,
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [[1, 2], [3]]}]},
        400,
        "inputs[0].data: not a regular array",
    ),
    (
        "sk",
        V2,
        {
            "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}],
            "outputs": [{"name": "scores"}],
        },
        400,
        "outputs[0].name: unknown output 'scores'; this model has predict, predict_proba",
    ),
    ("sk", V2, {"id": 7, "inputs": []}, 400, "id: must be a string"),
    ("sk", "/v2/models/other/infer", {"inputs": []}, 404, "Model 'other' is not served here"),
    (
        "sk",
        "/v2/models/clf/versions/v9.9.9/infer",
        {"inputs": []},
        404,
        "Version 'v9.9.9' of 'clf' is not served here",
    ),
    ("pipe", PIPE_V2, _pipe_inputs(city=None), 400, "inputs: missing input for feature 'city'"),
    (
        "pipe",
        PIPE_V2,
        _pipe_inputs(city={"datatype": "FP64", "data": [1.0]}),
        400,
        "inputs[4].datatype: FP64, but feature 'city' (str) takes strings: send BYTES",
    ),
    (
        "pipe",
        PIPE_V2,
        _pipe_inputs(age={"datatype": "BYTES", "data": ["30"]}),
        400,
        "inputs[0].datatype: BYTES, but feature 'age' (float64) takes numbers: send FP64",
    ),
    (
        "pipe",
        PIPE_V2,
        _pipe_inputs(visits={"shape": [2], "data": [1, 2]}),
        400,
        "inputs[3].shape: 'visits' has 2 rows but 'age' has 1",
    ),
    (
        "pipe",
        PIPE_V2,
        _pipe_inputs(visits={"datatype": "FP64", "data": [2.5]}),
        400,
        "inputs[3] ('visits'): expects integers, got 2.5",
    ),
    (
        "pipe",
        PIPE_V2,
        {
            "inputs": [
                *_pipe_inputs()["inputs"],
                {"name": "zip", "shape": [1], "datatype": "INT64", "data": [1]},
            ]
        },
        400,
        "inputs[5].name: 'zip' is not a feature of this model",
    ),
    (
        "sk",
        "/invocations",
        {"data": [ROW]},
        400,
        "body: expected exactly one of dataframe_split, dataframe_records, instances, inputs, got data",
    ),
    (
        "sk",
        "/invocations",
        {"dataframe_split": {"columns": ["f0", "f1", "f2"], "data": [[1, 2, 3]]}},
        400,
        "dataframe_split.columns: missing feature 'f3'",
    ),
    (
        "sk",
        "/invocations",
        {"dataframe_split": {"data": [[1, 2, 3]]}},
        400,
        "dataframe_split.data[0]: 3 values, but the model takes 4",
    ),
    (
        "sk",
        "/invocations",
        {"dataframe_split": {"data": [[1, "abc", 3, 4]]}},
        400,
        "dataframe_split.data column 'f1': expects numbers, got 'abc'",
    ),
    (
        "sk",
        "/invocations",
        {"dataframe_records": [{"f0": 1, "f1": 2, "f2": 3, "f3": 4}, {"f0": 1, "f1": 2, "f3": 4}]},
        400,
        "dataframe_records[1]: missing feature 'f2'",
    ),
    (
        "sk",
        "/invocations",
        {"instances": [1, 2, 3, 4]},
        400,
        "instances[0]: expected a row (a list of 4 values), got a number",
    ),
    (
        "sk",
        "/invocations",
        {"inputs": {"f0": [1], "f1": [2], "f2": [3]}},
        400,
        "inputs: missing feature 'f3'",
    ),
    (
        "sk",
        "/invocations",
        {"inputs": [[None, 1, 2, 3]]},
        400,
        "The model could not predict on this input: Input X contains NaN",
    ),
    (
        "pipe",
        "/invocations",
        {
            "dataframe_records": [
                {"age": 1, "income": 2, "score": 3, "visits": "many", "city": "oslo"}
            ]
        },
        400,
        "dataframe_records column 'visits': expects integers, got 'many'",
    ),
]


@pytest.mark.parametrize(
    ("server", "path", "body", "status", "message"),
    INVALID,
    ids=[f"{i}-{case[4][:40]}" for i, case in enumerate(INVALID)],
)
def test_bad_payloads_get_a_4xx_naming_the_field(
    request, server, path, body, status, message
) -> None:
    process: ServerProcess = request.getfixturevalue(f"{server}_server")
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, headers, data = call(process.port, "POST", path, raw=raw)
    answer = json.loads(data)
    assert got == status, answer
    assert headers["content-type"] == "application/json"
    if path == "/invocations":
        assert set(answer) == {"error_code", "message", "code"}
        assert answer["error_code"] == "BAD_REQUEST"
        assert message in answer["message"]
    else:
        assert set(answer) == {"error", "code"}
        assert message in answer["error"]


def test_csv_errors_name_the_column_or_row(pipe_server) -> None:
    port = pipe_server.port
    csv_type = {"Content-Type": "text/csv"}
    status, answer = call_json(
        port, "POST", "/invocations", raw=b"age,income,score,visits\n1,2,3,4\n", headers=csv_type
    )
    assert status == 400 and "CSV header: missing column 'city'" in answer["message"]
    status, answer = call_json(
        port, "POST", "/invocations",
        raw=b"age,income,score,visits,city\n1,2,3,4,oslo\n1,2,3\n", headers=csv_type,
    )  # fmt: skip
    assert status == 400 and "CSV line 3: 3 cells, but the header has 5" in answer["message"]
    status, answer = call_json(
        port, "POST", "/invocations",
        raw=b"age,income,score,visits,city\nold,2,3,4,oslo\n", headers=csv_type,
    )  # fmt: skip
    assert status == 400 and "CSV column 'age': expects numbers, got 'old'" in answer["message"]


def test_unsupported_content_type_is_415(sk_server) -> None:
    status, answer = call_json(
        sk_server.port, "POST", "/invocations", raw=b"f0=1", headers={"Content-Type": "text/plain"}
    )
    assert status == 415 and "Content-Type 'text/plain' is not read here" in answer["message"]


def test_oversized_bodies_get_413_and_the_connection_stays_usable(onnx_server) -> None:
    """The onnx server takes bodies up to 1 MB."""
    port = onnx_server.port
    big = json.dumps(v2_matrix(np.zeros((80_000, 4)))).encode()
    assert len(big) > 1024 * 1024
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", V2, body=big, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 413
        assert answer["code"] == "PAYLOAD_TOO_LARGE"
        assert "over this server's limit of 1048576 bytes (1 MB)" in answer["error"]
        conn.request("GET", "/v2/health/ready")  # same keep-alive connection
        ready = conn.getresponse()
        assert ready.status == 200 and json.loads(ready.read()) == {"ready": True}
        # chunked (no Content-Length): counted while it streams in
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(big), 65536):
            piece = big[start : start + 65536]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 413 and json.loads(response.read())["error_code"] == "BAD_REQUEST"
    finally:
        conn.close()
    # a small deflate body that inflates past the limit
    bomb = zlib.compress(b" " * (2 * 1024 * 1024))
    status, _, data = call(port, "POST", V2, raw=bomb, headers={"Content-Encoding": "deflate"})
    assert status == 413 and b"over this server's limit" in data
    status, _, data = call(port, "POST", V2, raw=b"plain", headers={"Content-Encoding": "deflate"})
    assert status == 400 and b"body: Content-Encoding deflate, but not zlib data" in data
    # far over the limit: refused before it is read
    status, _, data = call(port, "POST", V2, raw=b"x", headers={"Content-Length": str(50 * 2**20)})
    assert status == 413 and b"over this server's limit" in data


# -- OpenAPI -------------------------------------------------------------------------------------------------
def test_openapi_document_covers_the_routes_and_its_examples_work(sk_server) -> None:
    status, doc = call_json(sk_server.port, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {
        "/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{model_name}",
        "/v2/models/{model_name}/infer", "/v2/models/{model_name}/versions/{model_version}/infer",
        "/invocations", "/metrics", "/openapi.json",
    } <= set(doc["paths"])  # fmt: skip
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            url = path
            for param in operation.get("parameters", []):
                url = url.replace("{" + param["name"] + "}", param["example"])
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, spec in content.items() or [(None, {})]:
                raw = spec.get("example")
                if isinstance(raw, (dict, list)):
                    raw = json.dumps(raw)
                status, _, data = call(
                    sk_server.port, method.upper(), url,
                    raw=raw.encode() if raw is not None else None,
                    headers={"Content-Type": media_type} if media_type else None,
                )  # fmt: skip
                assert status == 200, (method, url, media_type, data)
