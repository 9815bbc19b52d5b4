"""Debian's real Prometheus scrapes a real model server; PromQL over its HTTP API counts the
requests this test sent, and the exported alerting rules and drift gauges load and evaluate.

Everything binds to 127.0.0.1; Prometheus keeps its data in a temporary folder and is stopped
in teardown. Waits poll with deadlines, never sleep.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_modelserver import V2, call, start_server, v2_matrix

from jupyter_modelhub import Hub
from jupyter_modelhub.monitoring import build_profile, compute_drift
from jupyter_modelhub.monitoring.alerts import AlertThresholds, alert_rules
from jupyter_modelhub.monitoring.metrics import CONTENT_TYPE, DriftMetrics

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="Debian's prometheus binary is not installed (apt-get install prometheus)",
    ),
]
DEPLOYMENT = "prom-test"
N_REQUESTS = 17
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class DriftExporter:
    """The drift gauges served over HTTP, as a deployment's exporter would serve them."""

    def __init__(self, metrics: DriftMetrics) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = metrics.exposition()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class Prometheus:
    def __init__(self, folder: Path, targets: dict[str, int], rules: str) -> None:
        self.port = free_port()
        (folder / "rules.yml").write_text(rules)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(folder / "rules.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(folder / "prometheus.log", "w+b")  # noqa: SIM115 - closed in stop()
        assert PROMETHEUS is not None
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}: {self.output()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5) as r:
            return r.status == 200

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = self.api("/api/v1/query", query=promql)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, classifier, training_data) -> Iterator[dict]:
    """A hub, a model server of one version, a drift exporter and Prometheus scraping both."""
    tmp = tmp_path_factory.mktemp("prometheus")
    X, _ = training_data
    hub = Hub.init(tmp / "hub")
    hub.register(classifier, "clf", sample=X)
    server = start_server(
        "clf", "--hub", str(hub.path), "--port", "0", "--runtime", "sklearn",
        "--deployment", DEPLOYMENT, "--variant", "blue", tmp=tmp,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    profile = build_profile({c: rng.normal(size=3000) for c in "abcd"})
    drift = DriftMetrics()
    drift.update(
        DEPLOYMENT,
        compute_drift(profile, {c: rng.normal(size=3000) + (c in "abc") for c in "abcd"}),
    )
    exporter = DriftExporter(drift)
    rules = alert_rules([DEPLOYMENT], AlertThresholds(drift_share=0.5, drift_for="1s"))
    prometheus = Prometheus(tmp, {"modelserver": server.port, "drift": exporter.port}, rules)
    try:
        poll(prometheus.ready, "prometheus to be ready")
        yield {"server": server, "prometheus": prometheus, "X": X}
    finally:
        prometheus.stop()
        exporter.close()
        server.terminate()


def test_promql_counts_the_requests_sent(stack) -> None:
    server, prometheus, X = stack["server"], stack["prometheus"], stack["X"]
    for i in range(N_REQUESTS):
        status, _, body = call(server.port, "POST", V2, v2_matrix(X[i : i + 1]))
        assert status == 200, body
    selector = f'deployment="{DEPLOYMENT}", endpoint="v2_infer", code="2xx"'
    promql = f"sum(modelhub_requests_total{{{selector}}})"

    def counted() -> bool:
        result = prometheus.query(promql)
        return bool(result) and float(result[0]["value"][1]) == N_REQUESTS

    poll(counted, f"{promql} == {N_REQUESTS}")
    [series] = prometheus.query(f"modelhub_requests_total{{{selector}}}")
    assert series["metric"]["model"] == "clf" and series["metric"]["variant"] == "blue"
    assert series["metric"]["version"] == "v0.0.1"


def test_prometheus_loads_the_rules_and_the_drift_alert_fires(stack) -> None:
    prometheus = stack["prometheus"]

    def rules() -> list[dict[str, Any]]:
        groups = prometheus.api("/api/v1/rules")["data"]["groups"]
        return [r for g in groups for r in g["rules"]]

    loaded = poll(rules, "the rules to load")
    assert {r["name"] for r in loaded} == {
        "ModelhubHighErrorRate",
        "ModelhubHighLatencyP99",
        "ModelhubDataDrift",
    }
    share = poll(
        lambda: prometheus.query(f'modelhub_dataset_drift_share{{deployment="{DEPLOYMENT}"}}'),
        "the drift gauge",
    )
    assert float(share[0]["value"][1]) == pytest.approx(0.75)

    def firing() -> list[dict[str, Any]]:
        alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    [alert] = poll(firing, "the drift alert to fire")
    assert alert["labels"]["alertname"] == "ModelhubDataDrift"
    assert alert["labels"]["deployment"] == DEPLOYMENT
    assert all(r["health"] == "ok" for r in rules()), rules()
