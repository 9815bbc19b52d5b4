"""Benchmark: what routing costs. A two-variant split against a single-variant server.

Same machine set-up as ``bench_serving.py`` (whose load generator and helpers it uses): the
server pinned to CPU 0, the load generator to CPU 1, keep-alive connections, every latency
recorded, single-row v2 JSON requests for a 20-feature logistic regression served by
onnxruntime. Servers, side by side in one run, taking turns in rounds:

- ``single``: one version, no traffic policy;
- ``split``: the same version as champion and a second version as challenger, 50/50, each
  request carrying its own ``X-Modelhub-Key`` (a hash per request, the sticky path);
- ``split-field``: the same split keyed by a ``user_id`` request parameter (the body is parsed
  once more to find it);
- ``shadow``: the challenger predicts a copy of every request after the answer.

Floor (issue 4): the p50 latency a two-variant split adds over a single variant is under
0.2 ms. Run: ``python benchmarks/bench_traffic.py [--duration 10] [--levels 1,8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serving as bs

FLOOR_ADDED_P50_MS = 0.2


def raw_request(port: int, path: str, body: bytes, key: str | None) -> str:
    extra = f"X-Modelhub-Key: {key}\r\n" if key is not None else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {bs.HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return (head.encode("latin-1") + body).decode("latin-1")


def run(server: bs.Server, requests: list[str], concurrency: int, warmup: float,
        duration: float, tmp: Path) -> dict[str, Any]:  # fmt: skip
    spec = {
        "host": bs.HOST,
        "port": server.port,
        "requests": requests,
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
        "latency_file": str(tmp / "latencies.bin"),
    }
    spec_file = tmp / "loadgen.json"
    spec_file.write_text(json.dumps(spec))
    assert server.proc is not None
    cpu0 = bs.proc_tree_cpu(server.proc.pid)
    proc = subprocess.run(
        ["taskset", "-c", bs.CLIENT_CPU, sys.executable, str(bs.SCRIPT), "--_loadgen",
         str(spec_file)],
        capture_output=True, text=True, timeout=warmup + duration + 60,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    lat = array("d")
    lat.frombytes(Path(spec["latency_file"]).read_bytes())
    result.update(
        lat=lat,
        duration=duration,
        server_cpu=bs.proc_tree_cpu(server.proc.pid) - cpu0,
        batch=(0.0, 0.0),
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per server/level")
    parser.add_argument("--levels", default="1,8", help="concurrency levels (default 1,8)")
    parser.add_argument("--rounds", type=int, default=5, help="turns per measurement")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    from jupyter_modelhub import Hub
    from jupyter_modelhub.experiments.policy import TrafficPolicy

    print(f"load average at the start: {bs.loadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-traffic-"))
    model, X = bs.build_model()
    hub = Hub.init(tmp / "hub")
    hub.register(model, bs.MODEL, sample=X, onnx=True)
    y = model.predict(X)
    hub.register(LogisticRegression(C=0.5).fit(X, y), bs.MODEL, sample=X, onnx=True)
    env = {**os.environ, "PYTHONPATH": str(bs.REPO_ROOT), "DVC_NO_ANALYTICS": "1"}
    base = [sys.executable, "-m", "jupyter_modelhub.modelserver", f"{bs.MODEL}@v0.0.1", "--hub",
            str(tmp / "hub"), "--host", bs.HOST, "--runtime", "onnx"]  # fmt: skip

    def policy(kind: str, key: str | None = None) -> str:
        weights = {"champion": 0.5, "challenger": 0.5} if kind == "split" else {
            "champion": 1.0, "challenger": 0.0}  # fmt: skip
        return json.dumps(TrafficPolicy(kind=kind, experiment="bench",  # type: ignore[arg-type]
                                        challengers={"challenger": "v0.0.2"}, weights=weights,
                                        key=key).to_dict())  # fmt: skip

    path = f"/v2/models/{bs.MODEL}/infer"
    rows = X[:64]
    plain = [json.dumps({"inputs": [{"name": "input", "shape": [1, bs.N_FEATURES],
                                     "datatype": "FP32", "data": r.tolist()}]}).encode()
             for r in rows]  # fmt: skip
    with_field = [json.dumps({"parameters": {"user_id": f"u{i}"},
                              "inputs": [{"name": "input", "shape": [1, bs.N_FEATURES],
                                          "datatype": "FP32", "data": r.tolist()}]}).encode()
                  for i, r in enumerate(rows)]  # fmt: skip
    setups = {
        "single": ([], plain, False, "one variant, no policy"),
        "split": (["--traffic", policy("split")], plain, True, "split 50/50, X-Modelhub-Key"),
        "split-field": (["--traffic", policy("split", "user_id")], with_field, False,
                        "split 50/50, user_id field"),
        "shadow": (["--traffic", policy("shadow")], plain, False, "shadow (challenger copies)"),
    }  # fmt: skip
    servers: dict[str, bs.Server] = {}
    requests: dict[str, list[str]] = {}
    levels = [int(v) for v in args.levels.split(",")]
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        for name, (extra, bodies, keyed, label) in setups.items():
            port = bs.free_port()
            server = bs.Server(name, label, [*base, "--port", str(port), *extra], port, path,
                               bodies, env=env, cwd=tmp)  # fmt: skip
            server.start(tmp)
            servers[name] = server
            requests[name] = [
                raw_request(port, path, b, f"key-{i}" if keyed else None)
                for i, b in enumerate(bodies)
            ]
        segment = args.duration / args.rounds
        for level in levels:
            for rnd in range(args.rounds):
                for name, server in servers.items():
                    warm = 1.0 if rnd == 0 else 0.3
                    results.setdefault((name, level), []).append(
                        run(server, requests[name], level, warm, segment, tmp)
                    )
    finally:
        for server in servers.values():
            server.stop()
    print(
        f"\nSingle-row v2 requests, ONNX, 1 replica, server on CPU {bs.SERVER_CPU}, load on CPU "
        f"{bs.CLIENT_CPU}, {args.duration:g} s per server and level ({args.rounds} rounds in turn)"
    )
    print(f"  {'server':38} {'conn':>4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    summary: dict[tuple[str, int], dict[str, Any]] = {}
    for (name, level), segments in results.items():
        s = bs.summarize(segments, level)
        summary[(name, level)] = s
        print(f"  {servers[name].label:38} {level:>4} {s['rps']:>8,.0f} {s['p50']:>7.3f} "
              f"{s['p99']:>7.3f} {s['all_errors']:>6}")  # fmt: skip
    print("\nAgainst the floor:")
    ok = True
    for level in levels:
        added = summary[("split", level)]["p50"] - summary[("single", level)]["p50"]
        passed = added < FLOOR_ADDED_P50_MS
        ok &= passed
        print(f"  p50 added by a two-variant split at concurrency {level}: {added:+.3f} ms "
              f"(< {FLOOR_ADDED_P50_MS} ms) {'PASS' if passed else 'FAIL'}")  # fmt: skip
    print(f"\nload average at the end: {bs.loadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
