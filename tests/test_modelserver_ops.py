"""The model server's operations: metrics, micro-batching, the prediction log, and the process
contract (inherited sockets, SIGTERM draining, READY/FAILED lines and exit codes).

Servers are real processes started by the tests (see ``test_modelserver.py``); waits poll with
deadlines, never sleep.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess

import numpy as np
import pandas as pd
import pytest
from test_modelserver import (  # helpers, and the module's servers
    V2,
    ServerProcess,
    call,
    call_json,
    metric,
    outputs_of,
    pipeline_model,
    poll,
    raw_request,
    read_response,
    scrape,
    served_hub,
    server_tmp,
    sk_server,
    start_server,
    v2_matrix,
)

from jupyter_modelhub import Hub

__all__ = ["pipeline_model", "served_hub", "server_tmp", "sk_server"]


# -- metrics -----------------------------------------------------------------------------------------------
def test_metrics_pass_promtool_and_count_requests(sk_server, training_data) -> None:
    X, _ = training_data
    port = sk_server.port
    before = scrape(port)
    labels = {"model": "clf", "version": "v0.0.1", "deployment": "fraud-prod", "variant": "blue"}
    for i in range(3):
        assert call(port, "POST", V2, v2_matrix(X[i : i + 2]))[0] == 200
    assert call(port, "POST", V2, {"inputs": []})[0] == 400
    assert call(port, "POST", "/invocations", {"inputs": X[:4].tolist()})[0] == 200
    after = scrape(port)

    def moved(name: str, **extra: str) -> float:
        return metric(after, name, **labels, **extra) - metric(before, name, **labels, **extra)

    assert moved("modelhub_requests_total", endpoint="v2_infer", code="2xx") == 3
    assert moved("modelhub_requests_total", endpoint="v2_infer", code="4xx") == 1
    assert moved("modelhub_requests_total", endpoint="invocations", code="2xx") == 1
    assert moved("modelhub_request_duration_seconds_count", endpoint="v2_infer") == 4
    assert moved("modelhub_predictions_total") == 3 * 2 + 4
    assert moved("modelhub_batch_size_sum") == 3 * 2 + 4
    assert metric(after, "modelhub_requests_in_progress", **labels) == 1  # the scrape itself
    assert metric(after, "modelhub_model_info", **labels, flavor="sklearn", runtime="sklearn") == 1

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    _, headers, text = call(port, "GET", "/metrics")
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert check.returncode == 0, (check.stdout + check.stderr).decode()


# -- micro-batching --------------------------------------------------------------------------------------
def test_concurrent_requests_are_coalesced_and_stay_matched(sk_server, classifier) -> None:
    rng = np.random.default_rng(5)
    port = sk_server.port
    before = scrape(port)
    n = 32
    rows = rng.normal(size=(n, 4))
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
    try:
        requests = [
            raw_request(
                V2, v2_matrix(rows[i : i + 1], outputs=[{"name": "predict_proba"}]), f"b{i}"
            )
            for i in range(n)
        ]
        for sock, raw in zip(sockets, requests, strict=True):  # a burst, all at once
            sock.sendall(raw)
        answers = [read_response(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    expected = classifier.predict_proba(rows)
    for i, (status, headers, data) in enumerate(answers):
        assert status == 200 and headers["x-request-id"] == f"b{i}"
        np.testing.assert_array_equal(
            outputs_of(json.loads(data))["predict_proba"], expected[i : i + 1]
        )
    after = scrape(port)
    calls = metric(after, "modelhub_batch_size_count") - metric(before, "modelhub_batch_size_count")
    rows_done = metric(after, "modelhub_batch_size_sum") - metric(before, "modelhub_batch_size_sum")
    assert rows_done == n
    assert calls < n, "no model call coalesced two requests"
    assert metric(after, "modelhub_batch_size_bucket", le="1.0") < metric(
        after, "modelhub_batch_size_count"
    )


# -- prediction log ----------------------------------------------------------------------------------------
def test_prediction_log_has_the_rows_that_were_served(sk_server, server_tmp, classifier) -> None:
    import pyarrow.parquet as pq

    folder = server_tmp / "predictions"
    rows = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -2.0, 3.0], [9.0, 8.0, 7.0, 6.0]])
    ids = ["log-a", "log-b"]
    call(sk_server.port, "POST", V2, v2_matrix(rows[:2]), headers={"X-Request-Id": ids[0]})
    call(sk_server.port, "POST", "/invocations", {"inputs": rows[2:].tolist()},
         headers={"X-Request-Id": ids[1]})  # fmt: skip

    def logged() -> list[pd.DataFrame] | None:
        files = sorted(folder.glob("*.parquet"))
        if not files:
            return None
        table = pd.concat([pq.read_table(f).to_pandas() for f in files])
        mine = table[table["request_id"].isin(ids)]
        return [mine] if len(mine) == 3 else None

    table = poll(logged, what="the prediction log")[0]
    assert list(table.columns) == [
        "timestamp", "request_id", "model", "model_version", "variant", "key",
        "f0", "f1", "f2", "f3", "prediction",
    ]  # fmt: skip
    table = table.sort_values(["request_id", "f0"])
    assert table["request_id"].tolist() == ["log-a", "log-a", "log-b"]
    assert set(table["model"]) == {"clf"} and set(table["model_version"]) == {"v0.0.1"}
    assert set(table["variant"]) == {"blue"}
    np.testing.assert_array_equal(table[["f0", "f1", "f2", "f3"]].to_numpy(), rows)
    np.testing.assert_array_equal(table["prediction"].to_numpy(), classifier.predict(rows))
    assert str(table["timestamp"].dtype) == "datetime64[us, UTC]"
    assert not list(folder.glob(".*.tmp"))


# -- the process: fd inheritance, SIGTERM, failures --------------------------------------------------------------
def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def test_replicas_start_at_once_on_an_inherited_socket_and_one_can_leave(
    hub: Hub, classifier, training_data, tmp_path
) -> None:
    X, _ = training_data
    hub.register(classifier, "clf", sample=X, onnx=True)  # a fresh hub: nothing loaded yet
    shared = _listening_socket()
    port = shared.getsockname()[1]
    fd = shared.fileno()
    args = ("clf", "--hub", str(hub.path), "--fd", str(fd))
    replicas = [ServerProcess(*args, pass_fds=(fd,), tmp=tmp_path) for _ in range(3)]
    try:
        for replica in replicas:  # started together, each ready on the same port
            assert replica.wait_ready()["port"] == port
        assert call(port, "POST", V2, v2_matrix(X[:1]))[0] == 200
        assert call_json(replicas[0].admin_port, "GET", "/v2/health/ready")[0] == 200
        assert replicas[0].terminate() == 0  # replaced: the socket stays open for the others
        for _ in range(20):
            status, _, _ = call(port, "POST", V2, v2_matrix(X[:2]))
            assert status == 200
        assert all(r.proc.poll() is None for r in replicas[1:])
    finally:
        for replica in replicas[1:]:
            assert replica.terminate() == 0
        for replica in replicas:
            replica.close()
        shared.close()


def test_sigterm_drains_in_flight_requests_and_flushes_the_log(served_hub, tmp_path, training_data):
    import pyarrow.parquet as pq

    X, _ = training_data
    folder = tmp_path / "log"
    server = start_server(
        "clf", "--hub", str(served_hub.path), "--port", "0", "--runtime", "sklearn",
        "--log-dir", str(folder), "--log-flush-seconds", "3600", tmp=tmp_path,
    )  # fmt: skip
    try:
        port = server.port
        keep_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        keep_alive.request("POST", V2, body=json.dumps(v2_matrix(X[:1])))
        first = keep_alive.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("Connection") is None
        # a request whose body is still arriving when SIGTERM comes
        body = raw_request(V2, v2_matrix(X[:3]), "slow-1")
        slow = socket.create_connection(("127.0.0.1", port), timeout=30)
        slow.sendall(body[:-10])
        poll(
            lambda: metric(scrape(server.admin_port), "modelhub_requests_in_progress") >= 2,
            what="the slow request to be in flight",
        )
        server.proc.send_signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        poll(refused, what="the server to stop accepting")
        assert call_json(server.admin_port, "GET", "/v2/health/ready") == (
            503,
            {"error": "The server is shutting down.", "code": "NOT_READY"},
        )
        assert call_json(server.admin_port, "GET", "/v2/health/live") == (200, {"live": True})
        keep_alive.request("POST", V2, body=json.dumps(v2_matrix(X[1:2])))
        second = keep_alive.getresponse()
        second.read()
        assert second.status == 200 and second.getheader("Connection") == "close"
        slow.sendall(body[-10:])
        status, headers, data = read_response(slow)
        assert status == 200 and headers["connection"] == "close"
        assert len(outputs_of(json.loads(data))["predict"]) == 3
        assert server.proc.wait(10) == 0
        files = list(folder.glob("*.parquet"))
        logged = pd.concat([pq.read_table(f).to_pandas() for f in files])
        assert len(logged) == 1 + 1 + 3 and "slow-1" in set(logged["request_id"])
    finally:
        server.close()


def test_a_corrupt_artifact_fails_with_the_integrity_message(hub: Hub, classifier, tmp_path):
    hub.register(classifier, "fraud")
    obj = hub.show("fraud").meta.artifact
    entries = hub.registry.dvc.tree_entries(obj)
    target = hub.registry.dvc.object_path(entries[0][1])
    os.chmod(target, 0o644)
    target.write_bytes(b"not a model" + target.read_bytes()[11:])
    server = ServerProcess("fraud", "--hub", str(hub.path), "--port", "0", tmp=tmp_path)
    try:
        line = server.next_line()
        assert line is not None and line.startswith("MODELHUB-FAILED The artifact ")
        assert "is corrupt" in line and "It was not loaded." in line
        assert server.next_line() is None  # exactly one line
        assert server.proc.wait(30) == 3
    finally:
        server.close()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("nope",), 3, "MODELHUB-FAILED "),
        (("clf", "--runtime", "onnx", "--fd", "999"), 4, "MODELHUB-FAILED cannot listen: "),
    ],
    ids=["unknown-model", "bad-fd"],
)
def test_startup_failures_exit_with_their_code(served_hub, tmp_path, args, code, fragment):
    server = ServerProcess(*args, "--hub", str(served_hub.path), "--port", "0", tmp=tmp_path)
    try:
        line = server.next_line()
        assert line is not None and line.startswith(fragment), line
        assert server.proc.wait(30) == code
    finally:
        server.close()


def test_a_taken_port_fails_with_exit_code_4(served_hub, tmp_path):
    taken = _listening_socket()
    try:
        port = str(taken.getsockname()[1])
        server = ServerProcess("clf", "--hub", str(served_hub.path), "--port", port, tmp=tmp_path)
        try:
            line = server.next_line()
            assert line is not None and line.startswith("MODELHUB-FAILED cannot listen: ")
            assert server.proc.wait(30) == 4
        finally:
            server.close()
    finally:
        taken.close()


def test_serve_function_reports_failure_without_exiting(hub: Hub) -> None:
    from jupyter_modelhub.modelserver import serve

    out = io.StringIO()
    assert serve("missing", hub, port=0, stdout=out) == 3
    assert out.getvalue().startswith("MODELHUB-FAILED ") and out.getvalue().count("\n") == 1
    out = io.StringIO()
    assert serve("missing", hub, port=0, sample_rate=2.0, stdout=out) == 2
    assert out.getvalue() == "MODELHUB-FAILED invalid option: sample_rate must be between 0 and 1\n"
