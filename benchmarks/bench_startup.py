"""Benchmark: local deployment start-up, ``hub.deploy(...)`` called to the first answer.

One fixed-seed 20-feature logistic regression registered twice in a fresh hub: ``startonnx``
with an ONNX copy (the server then uses onnxruntime) and ``startsk`` without one (scikit-learn
runtime). Scenarios, each ``--repeat`` times (median reported, min and max beside it):

  onnx x1         ``hub.deploy("startonnx@v0.0.1", replicas=1)`` to the first 200 answer;
  sklearn x1      the same for the scikit-learn-only version;
  sklearn x2      two replicas of it (``deploy`` returns when both are ready);
  restart kill-9  a running 1-replica sklearn deployment: ``kill -9`` of its replica to the
                  next 200 answer on the deployment's port (the supervisor keeps the listening
                  socket, so the request waits in its backlog for the new replica).

The first answer is polled on fresh connections every 5 ms after ``deploy`` returns (it returns
once every replica said READY). Every deployment is stopped before the next one starts. Also
prints the supervisor's log timestamps for the last run of each scenario (where time goes).

Run from the repository root:  python benchmarks/bench_startup.py [--repeat 5] [--no-zygote]
(~1 min; ``--no-zygote`` sets ``MODELHUB_ZYGOTE=0``: every replica is a new process, as before
the zygote.) Not a pass/fail test: it prints PASS/FAIL against the floor (< 2 s) and exits 0.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# Measure this checkout's code, even when some (other) jupyter_modelhub is installed.
if (REPO_ROOT / "jupyter_modelhub" / "__init__.py").exists():
    sys.path.insert(0, str(REPO_ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

FLOOR_S = 2.0
N_FEATURES = 20
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def infer_body() -> bytes:
    tensor = {"name": "input", "shape": [1, N_FEATURES], "datatype": "FP64",
              "data": [0.1] * N_FEATURES}  # fmt: skip
    return json.dumps({"inputs": [tensor]}).encode()


def answer(port: int, model: str, body: bytes, timeout: float = 5.0) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("POST", f"/v2/models/{model}/infer", body,
                           {"Content-Type": "application/json"})  # fmt: skip
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def first_answer(port: int, model: str, body: bytes, deadline: float) -> float | None:
    """Poll until a 200 answer: the perf_counter time it came, or None at the deadline."""
    while time.perf_counter() < deadline:
        if answer(port, model, body):
            return time.perf_counter()
        time.sleep(0.005)
    return None


def deploy_once(hub: Any, ref: str, replicas: int, body: bytes) -> tuple[float, float]:
    """(seconds to deploy()'s return, seconds to the first answer)."""
    model = ref.split("@")[0]
    port = free_port()
    t0 = time.perf_counter()
    hub.deploy(ref, "bench-start", replicas=replicas, port=port, timeout=60)
    returned = time.perf_counter() - t0
    done = first_answer(port, model, body, t0 + 60)
    if done is None:
        raise RuntimeError(f"{ref} x{replicas}: no answer within 60 s")
    return returned, done - t0


def restart_once(hub: Any, ref: str, body: bytes) -> float:
    """Seconds from ``kill -9`` of the only replica to the next answer."""
    model = ref.split("@")[0]
    port = free_port()
    status = hub.deploy(ref, "bench-start", replicas=1, port=port, timeout=60)
    if not answer(port, model, body):
        raise RuntimeError("the deployment does not answer before the kill")
    t0 = time.perf_counter()
    os.kill(status.replicas[0].pid, signal.SIGKILL)
    done = first_answer(port, model, body, t0 + 60)
    if done is None:
        raise RuntimeError("no answer within 60 s of the kill")
    return done - t0


def supervisor_timeline(hub: Any) -> list[str]:
    """The supervisor log's lines of the last run, with times relative to its first line."""
    lines = hub.deployment_logs("bench-start", 200)
    starts = [i for i, line in enumerate(lines) if "[supervisor] started" in line]
    lines = lines[starts[-1] :] if starts else lines
    out, first = [], None
    for line in lines:
        stamp, _, rest = line.partition(" ")
        try:
            from datetime import datetime

            when = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            continue
        first = first if first is not None else when
        out.append(f"    +{when - first:6.3f} s  {rest[:110]}")
    return out


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):5.2f} s  "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per scenario (default 5)")
    parser.add_argument("--timeline", action="store_true", help="print supervisor timelines")
    parser.add_argument("--no-zygote", action="store_true", help="start replicas as processes")
    args = parser.parse_args()
    if args.no_zygote:
        os.environ["MODELHUB_ZYGOTE"] = "0"

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from jupyter_modelhub import Hub

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, N_FEATURES))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    body = infer_body()
    results: dict[str, list[float]] = {}
    returned: dict[str, list[float]] = {}
    timelines: dict[str, list[str]] = {}
    try:
        hub = Hub.init(tmp / "hub")
        hub.register(model, "startonnx", sample=X[:5], onnx=True)
        hub.register(model, "startsk", sample=X[:5])
        print(
            f"load average at the start: {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; "
            f"zygote {'off' if args.no_zygote else 'on'}"
        )
        scenarios = [
            ("onnx x1", "startonnx@v0.0.1", 1),
            ("sklearn x1", "startsk@v0.0.1", 1),
            ("sklearn x2", "startsk@v0.0.1", 2),
        ]
        for _ in range(args.repeat):  # interleaved, so that a busy moment hits all alike
            for label, ref, replicas in scenarios:
                try:
                    back, first = deploy_once(hub, ref, replicas, body)
                    results.setdefault(label, []).append(first)
                    returned.setdefault(label, []).append(back)
                    timelines[label] = supervisor_timeline(hub)
                finally:
                    hub.stop("bench-start")
            try:
                results.setdefault("restart kill-9", []).append(
                    restart_once(hub, "startsk@v0.0.1", body)
                )
                timelines["restart kill-9"] = supervisor_timeline(hub)
            finally:
                hub.stop("bench-start")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        print("\ndeploy() to the first answer (restart: kill -9 to the next answer):")
        for label, values in results.items():
            verdict = "PASS" if statistics.median(values) < FLOOR_S else "FAIL"
            extra = (
                f"  deploy() returned: median {statistics.median(returned[label]):.2f} s"
                if label in returned
                else ""
            )
            print(f"  {label:15s} {summary(values)}  < {FLOOR_S:.0f} s {verdict}{extra}")
        if args.timeline:
            for label, lines in timelines.items():
                print(f"\nsupervisor log, last run of {label}:")
                print("\n".join(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
