"""Drift, health and alerts from a terminal: ``modelhub drift/monitor/alerts`` in a subprocess,
against a real local deployment (stopped in teardown) that logged requests in which one
feature was shifted."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli import modelhub
from test_deploy import infer, stop_every_deployment, use_model_server, wait_for

from jupyter_modelhub import Hub

PROMTOOL = shutil.which("promtool")
SHIFTED = "f2"
ROWS = 400


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)


def shifted_rows(n: int, seed: int = 1) -> np.ndarray:
    """Rows like the training data, with feature f2 moved by three standard deviations."""
    rows = np.random.default_rng(seed).normal(size=(n, 4))
    rows[:, 2] += 3.0
    return rows


def send_rows(endpoint: str, rows: np.ndarray, per_request: int = 20) -> int:
    """Send ``rows`` through the v2 API, ``per_request`` at a time; the number of requests."""
    sent = 0
    for start in range(0, len(rows), per_request):
        status, reply = infer(endpoint, rows[start : start + per_request].tolist())
        assert status == 200, reply
        sent += 1
    return sent


def drift_json(hub: Path, *args: str) -> dict[str, Any] | None:
    """``drift svc --json``, or None while the log does not have every row yet."""
    proc = modelhub("drift", "svc", "--json", *args, hub=hub, ok=False)
    if proc.returncode != 0:
        assert "logged no prediction" in proc.stderr, proc.stderr
        return None
    drift = json.loads(proc.stdout)
    return drift if drift["n_rows"] >= ROWS else None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, classifier, training_data) -> Iterator[Hub]:
    """fraud@v0.0.1 registered with its training data as reference, deployed as ``svc`` (from
    the command line), which answered ROWS rows with f2 shifted (logged by the time this
    returns); stopped after the module."""
    with pytest.MonkeyPatch.context() as patch:
        use_model_server(patch)
        hub = Hub.init(tmp_path_factory.mktemp("monitoring") / "hub")
        X, _ = training_data
        hub.register(classifier, "fraud", sample=X[:5], reference=X, onnx=True)
        hub.register(classifier, "bare", sample=X[:5], onnx=True)
        try:
            modelhub("deploy", "fraud", "--name", "svc", hub=hub.path)
            endpoint = hub.deployment("svc").endpoint
            send_rows(endpoint, shifted_rows(ROWS))
            wait_for(lambda: drift_json(hub.path), 60, "the requests in the prediction log")
            yield hub
        finally:
            stop_every_deployment(hub)


def test_the_registration_cached_the_drift_profile(served: Hub) -> None:
    md5 = served.show("fraud").meta.reference.stored.md5  # type: ignore[union-attr]
    assert (served.path / ".modelhub" / "cache" / "profiles" / f"{md5}.npz").is_file()


def test_drift_flags_the_shifted_feature(served: Hub) -> None:
    drift = drift_json(served.path)
    assert drift is not None
    report = drift["report"]
    assert [f["column"] for f in report["features"] if f["drifted"]] == [SHIFTED]
    assert report["features"][0]["column"] == SHIFTED  # sorted by drift
    assert drift["ref"] == "fraud@v0.0.1" and drift["n_rows"] == ROWS

    lines = modelhub("drift", "svc", "--test", "ks", hub=served.path).stdout.splitlines()
    assert lines[0].startswith(f"Drift of deployment svc (fraud@v0.0.1): {ROWS} requests logged")
    assert lines[1].startswith("1 of 4 features drifted (25%, threshold 50%): no dataset drift")
    assert lines[2].split() == [
        "FEATURE", "TYPE", "TEST", "SCORE", "P-VALUE", "EFFECT", "SIZE", "DRIFTED",
    ]  # fmt: skip
    first = lines[3].split()
    assert first[:3] == [SHIFTED, "numerical", "ks"] and first[-1] == "DRIFTED"
    assert all(line.split()[-1] == "no" for line in lines[4:7])
    assert "p-values corrected by bh; effect size beside each test" in lines


def test_drift_over_time_and_windows(served: Hub) -> None:
    drift = drift_json(served.path, "--window", "1h", "--over-time", "1h", "--step", "30m")
    assert drift is not None
    timeline = drift["timeline"]
    assert timeline["columns"] and sum(timeline["n_rows"]) >= ROWS
    assert drift["window"]["start"] is not None and drift["window"]["end"] is None

    out = modelhub("drift", "svc", "--over-time", "1h", hub=served.path).stdout
    assert "drift over time (window start: share of drifted features, rows):" in out
    proc = modelhub("drift", "svc", "--since", "2999-01-01T00:00:00", hub=served.path, ok=False)
    assert proc.returncode == 2 and "logged no prediction" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_html_report_to_share(served: Hub, tmp_path: Path) -> None:
    page = tmp_path / "drift.html"
    out = modelhub("drift", "svc", "--html", str(page), hub=served.path).stdout
    assert out.startswith(f"Wrote the drift report of svc to {page} (")
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Drift of deployment svc" in html
    assert f"<td>{SHIFTED}</td>" in html and page.stat().st_size < 1_000_000


def test_monitor_shows_the_requests_per_variant(served: Hub) -> None:
    endpoint = served.deployment("svc").endpoint
    stop = threading.Event()

    def load() -> None:
        seed = 100
        while not stop.is_set():  # fresh rows each time: the log stays a sample of the shift
            seed += 1
            send_rows(endpoint, shifted_rows(20, seed), per_request=5)

    sender = threading.Thread(target=load, daemon=True)
    sender.start()
    try:
        health = json.loads(
            modelhub("monitor", "svc", "--interval", "1s", "--json", hub=served.path).stdout
        )
        text = modelhub("monitor", "svc", "--interval", "500ms", hub=served.path).stdout
    finally:
        stop.set()
        sender.join(30)
    points = [p for p in health["health"] if p["deployment"] == "svc"]
    assert points and sum(p["requests"] for p in points) > 0
    busy = max(points, key=lambda p: p["requests"])
    assert busy["requests_per_second"] > 0 and busy["error_rate"] == 0.0
    assert busy["p50_latency"] is not None and busy["batch_size"] >= 1
    assert [r["health"] for r in health["replicas"]] == ["ready"]
    lines = text.splitlines()
    assert lines[0].startswith("Health of deployment svc over the last ")
    assert lines[0].endswith("(1/1 replicas ready)")
    assert lines[1].split() == [
        "VARIANT", "REQUESTS/S", "REQUESTS", "P50", "P99", "ERROR", "RATE", "BATCH", "SIZE",
    ]  # fmt: skip
    assert any(line.startswith("replica 0: ready, version v0.0.1") for line in lines)


needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)"
)


@needs_promtool
def test_exported_rules_pass_promtool_and_the_dashboard_is_json(tmp_path: Path) -> None:
    out = modelhub(
        "alerts", "export", "--out", str(tmp_path / "mon"), "--deployment", "svc",
        "--error-rate", "2%", "--p99", "300ms", "--drift-share", "0.3",
    ).stdout  # fmt: skip
    rules, dashboard = (
        tmp_path / "mon" / "modelhub-alerts.yml",
        tmp_path / "mon" / "modelhub-grafana.json",
    )
    assert out.splitlines()[0] == "Wrote alerting rules and a Grafana dashboard for svc"
    assert PROMTOOL is not None
    check = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 3 rules found" in check.stdout
    text = rules.read_text()
    assert "> 0.02" in text and "> 0.3" in text and ">= 0.3" in text
    assert json.loads(dashboard.read_text())["title"] == "jupyter-modelhub"


class Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    Receiver.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.bodies
    finally:
        server.shutdown()
        server.server_close()


def test_built_in_alerts_notify_a_webhook_once(served: Hub, webhook) -> None:
    url, bodies = webhook
    proc = modelhub(
        "alerts", "run", "svc", "--webhook", url, "--interval", "100ms", "--checks", "3",
        "--drift-share", "0.25", hub=served.path,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Checking svc every 0.1 s (error_rate > 0.05, p99_latency > 0.5, ")
    assert lines[1].startswith("FIRING ModelhubDataDrift [deployment=svc]: drift_share is 0.25")
    assert lines[2] == "Stopped after 3 check(s); 1 notice(s) sent"
    assert len(bodies) == 1  # sent once, not once per check
    alert = bodies[0]["alerts"][0]
    assert alert["labels"] == {
        "alertname": "ModelhubDataDrift", "severity": "warning", "deployment": "svc",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drift", "nosuch"], "No deployment named 'nosuch'"),
        (["drift", "svc", "--window", "5q"], "argument --window: invalid duration '5q'"),
        (["drift", "svc", "--test", "nope"], "Unknown drift test 'nope'. Use one of: ks,"),
        (["drift", "svc", "--window", "1h", "--since", "2026-01-01"], "Both a window and a start"),
        (["drift-data", "bare", "missing.csv"], "No data file at"),
        (["alerts", "run", "svc"], "Say where alerts go: --webhook URL"),
        (["alerts", "run", "svc", "--email-to", "a@example.org"], "need both --email-to and"),
        (["alerts", "run", "svc", "--email-to", "a@example.org", "--smtp-host", "localhost",
          "--smtp-password-env", "MODELHUB_TEST_UNSET"],
         "The SMTP password variable MODELHUB_TEST_UNSET is not set."),
        (["alerts", "export", "--error-rate", "2"], "invalid share '2'"),
        (["alerts", "exprot"], "unknown action 'exprot'. Did you mean 'export'?"),
        (["alerts"], "say which action: export, run"),
        (["monitor", "nosuch"], "No deployment named 'nosuch'"),
    ],
)  # fmt: skip
def test_mistakes_exit_2_with_one_line(served: Hub, args: list[str], message: str) -> None:
    proc = modelhub(*args, hub=served.path, ok=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]  # one line (under argparse's usage)


def test_drift_of_a_file_and_of_a_version_without_reference(served: Hub, tmp_path: Path) -> None:
    import pandas as pd

    table = tmp_path / "week.csv"
    pd.DataFrame(shifted_rows(300), columns=["f0", "f1", "f2", "f3"]).to_csv(table, index=False)
    data = json.loads(modelhub("drift-data", "fraud", str(table), "--json", hub=served.path).stdout)
    assert [f["column"] for f in data["features"] if f["drifted"]] == [SHIFTED]
    proc = modelhub("drift-data", "bare", str(table), hub=served.path, ok=False)
    assert proc.returncode == 2
    assert "bare@v0.0.1 has no reference data to compare with." in proc.stderr


def test_help_explains_with_examples() -> None:
    top = modelhub("--help").stdout
    for verb in ("drift", "drift-data", "monitor", "alerts"):
        assert f"\n    {verb}" in top
    drift = modelhub("drift", "--help").stdout
    assert "Example: modelhub drift fraud-svc --window 1h --over-time 1h --step 15m" in drift
    assert "--window DURATION" in drift and "--html FILE" in drift
    run = modelhub("alerts", "run", "--help").stdout
    assert "--smtp-password-env VAR" in run and "never pass a password" in run
    assert "Example: modelhub alerts export" in modelhub("alerts", "--help").stdout


def test_alerts_run_serves_the_drift_gauges_for_prometheus(served: Hub, webhook) -> None:
    import os
    import socket
    import sys
    import urllib.request

    from test_cli import ROOT

    url, _ = webhook
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODELHUB_HUB": str(served.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_modelhub.cli", "alerts", "run", "svc", "--webhook", url,
         "--interval", "200ms", "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:

        def gauges() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return None
            return text if 'modelhub_dataset_drift_share{deployment="svc"}' in text else None

        text = wait_for(gauges, 60, "the drift gauges on the metrics port")
        assert f'modelhub_feature_drift_score{{deployment="svc",feature="{SHIFTED}"' in text
        promtool = shutil.which("promtool")
        if promtool:
            check = subprocess.run(
                [promtool, "check", "metrics"], input=text, capture_output=True, text=True
            )
            assert check.returncode == 0, check.stdout + check.stderr
    finally:
        proc.terminate()
        proc.wait(10)
