"""Docker target: image build times (first build, a new version), deploy, and a rolling
update under load (failed requests, latency), against the Docker engine ``docker info``
reaches. Figures only; always exits 0.

    python benchmarks/bench_docker.py [--replicas 2] [--keep-cache]

The first build is timed after removing this benchmark's images and the engine's build cache
(the base image stays; the wheelhouse on the host stays warm). Needs the base image
(``modelhub build-base``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

import docker
import numpy as np
from sklearn.linear_model import LogisticRegression

from jupyter_modelhub import Hub

ROW = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [0.1] * 4}]}
)


class Load(threading.Thread):
    """One new connection per request (so the kernel picks a container each time)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop, self.latencies, self.failures = port, threading.Event(), [], 0

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request(
                    "POST", "/v2/models/bench/infer", ROW, {"Content-Type": "application/json"}
                )
                ok = conn.getresponse().status == 200
                conn.close()
            except OSError:
                ok = False
            self.latencies.append(time.perf_counter() - started)
            self.failures += not ok
            time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--keep-cache", action="store_true", help="do not clear the build cache")
    args = parser.parse_args()
    client = docker.from_env()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    y = (X[:, 0] > 0).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub.init(Path(tmp) / "hub")
        hub.register(LogisticRegression().fit(X, y), "bench", sample=X, onnx=True)
        hub.register(LogisticRegression(C=0.1).fit(X, y), "bench", sample=X, onnx=True)
        if not args.keep_cache:
            for tag in ("modelhub/bench:v0.0.1", "modelhub/bench:v0.0.2"):
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(tag, force=True)
            client.api.prune_builds()
            client.images.prune(filters={"dangling": True})
        first = hub.build("bench@v0.0.1")
        second = hub.build("bench@v0.0.2")
        print(
            f"first build   {first.seconds:6.1f} s  ({first.size_mb:.0f} MB, {first.layers} layers)"
        )
        print(
            f"new version   {second.seconds:6.1f} s  ({second.cached_steps}/{second.steps} steps cached)"
        )
        started = time.monotonic()
        status = hub.deploy("bench@v0.0.1", target="docker", replicas=args.replicas)
        print(f"deploy        {time.monotonic() - started:6.1f} s  ({args.replicas} containers)")
        load = Load(int(status.endpoint.rsplit(":", 1)[1]))
        load.start()
        time.sleep(2)
        before = len(load.latencies)
        started = time.monotonic()
        hub.update("bench", "v0.0.2")
        took = time.monotonic() - started
        during = load.latencies[before:]
        time.sleep(1)
        load.stop.set()
        load.join()
        print(
            f"update        {took:6.1f} s  {len(during)} requests during it, "
            f"{load.failures} failed of {len(load.latencies)}; latency during the update "
            f"p50 {statistics.median(during) * 1e3:.1f} ms, max {max(during) * 1e3:.0f} ms"
        )
        started = time.monotonic()
        hub.stop("bench")
        print(f"stop          {time.monotonic() - started:6.1f} s")


if __name__ == "__main__":
    main()
