"""Benchmark: serving single-row JSON requests, side by side in one run.

One fixed-seed 20-feature logistic regression (scikit-learn), four servers on it:

  floor         a bare tornado handler returning constant JSON on POST (written here);
  MLflow 3      ``mlflow models serve -m DIR --env-manager local -w 1`` on the same model saved
                with ``mlflow.sklearn.save_model`` (its own venv, ``/work/mlflow-venv``),
                ``POST /invocations {"inputs": [[20 floats]]}``;
  ours onnx     ``python -m jupyter_modelhub.modelserver bench --runtime onnx``,
                ``POST /v2/models/bench/infer`` with one FP32 tensor of shape [1, 20];
  ours sklearn  the same with ``--runtime sklearn`` (FP64 tensor; micro-batching on by default).

Every server is pinned to CPU 0 (``taskset -c 0``); the load generator, a separate process
(asyncio protocols, raw keep-alive HTTP/1.1, N connections each sending its next request as
soon as the previous answer is in), is pinned to CPU 1. Every request's latency is recorded;
non-200 answers and broken connections count as errors. All servers stay up (idle while another
is measured). Each server's ``--duration`` seconds at a level are split into ``--rounds`` (5)
segments, and the servers take turns segment by segment (rotating order), so that a change in
the machine's load hits all of them alike; a server's first segment at a level follows 2 s of
warm-up, later ones 0.5 s (fresh connections each time). Extra targets: ours-onnx
``/invocations`` (MLflow's ``inputs`` format) at 32 connections, MLflow with
``dataframe_split`` at 1. Besides req/s and latency percentiles the table gives the server's CPU
use (its process tree's user + system time from /proc: % of the run and microseconds per
request, which other load on the machine disturbs less than req/s) and, for ours, the requests
per model call (micro-batching, from the server's own ``/metrics``).

Start-up: time from starting each server process to its first successful answer, and (when the
hub has the local deployment API) from ``hub.deploy(...)`` being called to the first answer.

Run from the repository root:  python benchmarks/bench_serving.py [--duration 15]
(~5 min with the default 15 s; ``--duration 3`` for a quick run; ``--profile`` appends py-spy
profiles of the floor and our servers under load, ~1 more minute; ``--onnx-batch 32`` also
measures ours-onnx with ``--max-batch-size 32``.) Not a pass/fail test: it prints PASS/FAIL against
the issue's floors and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from array import array
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
DEFAULT_MLFLOW_VENV = Path(os.environ.get("MLFLOW_VENV", "/work/mlflow-venv"))
HOST = "127.0.0.1"
SERVER_CPU = "0"
CLIENT_CPU = "1"
N_FEATURES = 20
SEED = 0
MODEL = "bench"

# The floors.
FLOOR_ONNX_VS_FLOOR = 0.8  # ours-onnx req/s at 32 / the bare tornado handler's, at least
FLOOR_ONNX_VS_MLFLOW = 5.0  # ours-onnx req/s at 32 / MLflow's, at least
FLOOR_ONNX_P99_MS = 0.6  # ours-onnx p99 at concurrency 1, under
FLOOR_SKLEARN_VS_MLFLOW = 4.0  # ours-sklearn req/s at 32 / MLflow's, at least
FLOOR_DEPLOY_S = 2.0  # a deployment answers within this many seconds of deploy()

MLFLOW_SETUP = f"""\
  python3 -m venv {DEFAULT_MLFLOW_VENV}
  {DEFAULT_MLFLOW_VENV}/bin/pip install 'mlflow>=3,<4' scikit-learn
(or point MLFLOW_VENV / --mlflow-python at another venv with MLflow 3)"""


# == the load generator (its own process, pinned to CLIENT_CPU) ===================================
class _Conn(asyncio.Protocol):
    """One keep-alive connection sending its next request as soon as an answer is complete."""

    def __init__(self, gen: _LoadGen, index: int) -> None:
        self.gen = gen
        self.index = index
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.waiting = False
        self.closing = False  # the server said Connection: close
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send()

    def send(self) -> None:
        gen = self.gen
        if time.perf_counter() >= gen.end or self.transport is None or self.closing:
            self.waiting = False
            if self.transport is not None:
                self.transport.close()
            return
        request = gen.requests[gen.next_request % len(gen.requests)]
        gen.next_request += 1
        self.waiting = True
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(buf[:head_end]).lower()
            body_start = head_end + 4
            i = head.find(b"\r\ncontent-length:")
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                length = int(head[i + 17 : j if j >= 0 else len(head)])
                end = body_start + length
                if len(buf) < end:
                    return
            elif b"\r\ntransfer-encoding: chunked" in head:
                end = _chunked_end(buf, body_start)
                if end < 0:
                    return
            else:
                end = body_start  # no body (a 204/304), or read until close: not expected here
            now = time.perf_counter()
            status = int(head[9:12])
            if b"\r\nconnection: close" in head:
                self.closing = True
            del buf[:end]
            self.waiting = False
            self.gen.record(status, self.sent_at, now)
            self.send()
            if not self.waiting:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting:
            self.gen.broken += 1
        self.transport = None
        if not self.lost.done():
            self.lost.set_result(None)


def _chunked_end(buf: bytearray, pos: int) -> int:
    """The end of a chunked body starting at ``pos``, or -1 if it is not all in ``buf``."""
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return -1
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2 + size + 2
        if size == 0:
            # no trailers expected: the terminating CRLF directly follows "0\r\n"
            return pos if len(buf) >= pos else -1
        if len(buf) < pos:
            return -1


class _LoadGen:
    def __init__(self, spec: dict[str, Any], latency_file: Path) -> None:
        self.host = spec["host"]
        self.port = spec["port"]
        self.requests = [r.encode("latin-1") for r in spec["requests"]]
        self.concurrency = spec["concurrency"]
        self.warmup = spec["warmup"]
        self.duration = spec["duration"]
        self.latency_file = latency_file
        self.next_request = 0
        self.latencies = array("d")
        self.total = 0
        self.errors = 0  # non-200 answers in the measured window
        self.statuses: dict[int, int] = {}
        self.broken = 0  # connections lost with a request outstanding (whole run)
        self.reconnects = 0
        self.start = self.measure_from = self.end = 0.0

    def record(self, status: int, sent: float, done: float) -> None:
        self.total += 1
        if self.measure_from <= done < self.end:
            if status == 200:
                self.latencies.append(done - sent)
            else:
                self.errors += 1
                self.statuses[status] = self.statuses.get(status, 0) + 1

    async def _connection(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        while time.perf_counter() < self.end:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Conn(self, index), self.host, self.port
                )
            except OSError:
                self.broken += 1
                await asyncio.sleep(0.01)
                continue
            await conn.lost
            if time.perf_counter() < self.end:
                self.reconnects += 1
                if self.reconnects > 10_000:  # something is badly wrong: stop hammering
                    self.end = time.perf_counter()

    async def run(self) -> dict[str, Any]:
        self.start = time.perf_counter()
        self.measure_from = self.start + self.warmup
        self.end = self.measure_from + self.duration
        tasks = [asyncio.ensure_future(self._connection(i)) for i in range(self.concurrency)]
        await asyncio.wait_for(asyncio.gather(*tasks), self.warmup + self.duration + 30)
        finished = time.perf_counter()
        with self.latency_file.open("wb") as out:
            self.latencies.tofile(out)
        usage = os.times()
        return {
            "measured": len(self.latencies),
            "errors": self.errors,
            "statuses": self.statuses,
            "broken": self.broken,
            "reconnects": self.reconnects,
            "total": self.total,
            "seconds": finished - self.start,
            "client_cpu": usage.user + usage.system,
        }


def loadgen_main(spec_file: str) -> int:
    import gc

    spec = json.loads(Path(spec_file).read_text())
    gen = _LoadGen(spec, Path(spec["latency_file"]))
    gc.disable()  # no collector pauses on the client's clock
    result = asyncio.run(gen.run())
    print(json.dumps(result), flush=True)
    return 0


# == the floor: a bare tornado handler (its own process, pinned to SERVER_CPU) ====================
FLOOR_BODY = b'{"outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[1]}]}'


def floor_main(port: int) -> int:
    from tornado import httpserver, ioloop, web

    class Constant(web.RequestHandler):
        def post(self, *args: str) -> None:
            self.set_header("Content-Type", "application/json")
            self.finish(FLOOR_BODY)

    app = web.Application([(r"/.*", Constant)])
    server = httpserver.HTTPServer(app)
    server.listen(port, HOST)
    print(f"FLOOR-READY {port}", flush=True)
    signal.signal(
        signal.SIGTERM,
        lambda *a: ioloop.IOLoop.current().add_callback_from_signal(ioloop.IOLoop.current().stop),
    )
    ioloop.IOLoop.current().start()
    return 0


# == helpers of the main process ==================================================================
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_call(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One request on a fresh connection (start-up probes, correctness checks)."""
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_first_answer(
    port: int, path: str, body: bytes, deadline: float, proc: subprocess.Popen[Any] | None = None
) -> float | None:
    """Poll until a 200 answer; the time it came (perf_counter), None at the deadline."""
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            return None
        try:
            status, _ = http_call(port, "POST", path, body, timeout=2.0)
            if status == 200:
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.005)
    return None


def http_request_bytes(port: int, path: str, body: bytes) -> str:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return (head.encode("latin-1") + body).decode("latin-1")


def proc_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and all its descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


def batch_counters(port: int) -> tuple[float, float] | None:
    """Our server's ``modelhub_batch_requests`` histogram: (sum, count) over every label set."""
    try:
        status, text = http_call(port, "GET", "/metrics", timeout=5.0)
    except OSError:
        return None
    if status != 200:
        return None
    total = count = 0.0
    for line in text.decode().splitlines():
        if line.startswith("modelhub_batch_requests_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("modelhub_batch_requests_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def percentile(sorted_values: array[float] | list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def checkout_state() -> str:
    """This checkout's commit, and whether the served package has uncommitted changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h %s")
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "jupyter_modelhub")
    commit = commit if len(commit) <= 80 else commit[:77] + "..."
    return commit + (" (+ uncommitted changes in jupyter_modelhub/)" if dirty else "")


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


class Server:
    """A server process started in its own session, pinned to SERVER_CPU."""

    def __init__(self, key: str, label: str, argv: list[str], port: int, path: str,
                 bodies: list[bytes], env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:  # fmt: skip
        self.key = key
        self.label = label
        self.argv = ["taskset", "-c", SERVER_CPU, *argv]
        self.port = port
        self.path = path
        self.bodies = bodies
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None
        self.first_answer_s: float | None = None

    def start(self, log_dir: Path, timeout: float = 120.0) -> None:
        self.log = log_dir / f"{self.key}.log"
        out = self.log.open("wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=self.env, cwd=self.cwd, start_new_session=True,
        )  # fmt: skip
        out.close()
        done = wait_first_answer(self.port, self.path, self.bodies[0], t0 + timeout, self.proc)
        if done is None:
            tail = self.log.read_text(errors="replace")[-3000:]
            code = self.proc.poll()
            why = f"exited with {code}" if code is not None else f"no answer in {timeout:.0f} s"
            raise RuntimeError(f"{self.label}: {why}:\n{tail}")
        self.first_answer_s = done - t0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        # the session may still hold children (uvicorn under `mlflow models serve`)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def run_segment(server: Server, path: str, bodies: list[bytes], concurrency: int,
                warmup: float, duration: float, tmp: Path) -> dict[str, Any]:  # fmt: skip
    """One load-generator run (a pinned child process) against ``server``: raw figures."""
    spec = {
        "host": HOST,
        "port": server.port,
        "requests": [http_request_bytes(server.port, path, b) for b in bodies],
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
    }
    latency_file = tmp / "latencies.bin"
    spec["latency_file"] = str(latency_file)
    spec_file = tmp / "loadgen.json"
    spec_file.write_text(json.dumps(spec))
    assert server.proc is not None
    ours = server.key.startswith(("onnx", "sklearn"))
    batches0 = batch_counters(server.port) if ours else None
    cpu0 = proc_tree_cpu(server.proc.pid)
    proc = subprocess.run(
        ["taskset", "-c", CLIENT_CPU, sys.executable, str(SCRIPT), "--_loadgen", str(spec_file)],
        capture_output=True, text=True, timeout=warmup + duration + 60,
    )  # fmt: skip
    server_cpu = proc_tree_cpu(server.proc.pid) - cpu0
    batches1 = batch_counters(server.port) if ours else None
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    lat = array("d")
    lat.frombytes(latency_file.read_bytes())
    latency_file.unlink()
    result.update(lat=lat, duration=duration, server_cpu=server_cpu, batch=(0.0, 0.0))
    if batches0 and batches1:
        result["batch"] = (batches1[0] - batches0[0], batches1[1] - batches0[1])
    return result


def summarize(segments: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Figures of one server at one level from its segments (every latency kept)."""
    values = sorted(v for seg in segments for v in seg["lat"])
    n = len(values)
    duration = sum(seg["duration"] for seg in segments)
    total = max(1, sum(seg["total"] for seg in segments))
    seconds = sum(seg["seconds"] for seg in segments)
    server_cpu = sum(seg["server_cpu"] for seg in segments)
    batch_sum = sum(seg["batch"][0] for seg in segments)
    batch_count = sum(seg["batch"][1] for seg in segments)
    statuses: dict[str, int] = {}
    for seg in segments:
        for k, v in seg["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    errors = sum(seg["errors"] for seg in segments)
    broken = sum(seg["broken"] for seg in segments)
    return {
        "concurrency": concurrency,
        "segments": len(segments),
        "measured": n,
        "rps": n / duration,
        "rps_segments": [len(seg["lat"]) / seg["duration"] for seg in segments],
        "p50": percentile(values, 0.50) * 1e3,
        "p90": percentile(values, 0.90) * 1e3,
        "p99": percentile(values, 0.99) * 1e3,
        "max": (values[-1] * 1e3) if values else float("nan"),
        "errors": errors,
        "broken": broken,
        "all_errors": errors + broken,
        "statuses": statuses,
        "server_cpu_pct": 100.0 * server_cpu / seconds,
        "server_us_per_req": 1e6 * server_cpu / total,
        "client_us_per_req": 1e6 * sum(seg["client_cpu"] for seg in segments) / total,
        "requests_per_call": (batch_sum / batch_count) if batch_count else None,
    }


def run_load(server: Server, concurrency: int, warmup: float, duration: float,
             tmp: Path) -> dict[str, Any]:  # fmt: skip
    """One run of ``duration`` seconds against ``server``'s own path and bodies."""
    segment = run_segment(server, server.path, server.bodies, concurrency, warmup, duration, tmp)
    return summarize([segment], concurrency)


# == set-up: model, hub, MLflow model =============================================================
def build_model() -> tuple[Any, Any]:
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(
        n_samples=5000, n_features=N_FEATURES, n_informative=10, random_state=SEED
    )
    model = LogisticRegression(max_iter=1000).fit(X, y)
    return model, np.asarray(X, dtype=np.float64)


MLFLOW_SAVE = textwrap.dedent(
    """\
    import pickle, sys, warnings
    import numpy as np, mlflow, mlflow.sklearn, sklearn
    from mlflow.models import infer_signature
    warnings.filterwarnings("ignore")
    model_file, x_file, out = sys.argv[1:4]
    with open(model_file, "rb") as f:
        model = pickle.load(f)
    X = np.load(x_file)
    mlflow.sklearn.save_model(model, out, signature=infer_signature(X, model.predict(X)))
    print(mlflow.__version__, sklearn.__version__)
    """
)


def find_mlflow_python(arg: str | None) -> Path | None:
    candidates = [Path(arg)] if arg else [DEFAULT_MLFLOW_VENV / "bin" / "python"]
    for c in candidates:
        if c.exists():
            return c
    return None


def find_py_spy() -> str | None:
    for c in (os.environ.get("PY_SPY"), str(Path(sys.executable).with_name("py-spy"))):
        if c and Path(c).exists():
            return c
    return shutil.which("py-spy")


# == deploy() start-up ==============================================================================
def measure_deploy(hub: Any, ref: str, body: bytes) -> dict[str, Any]:
    """``hub.deploy`` from the call to the first answered request, then ``hub.stop``."""
    if not hasattr(hub, "deploy"):
        return {"skipped": "this checkout's Hub has no deploy()"}
    name = "bench-deploy"
    port = free_port()
    t0 = time.perf_counter()
    try:
        status = hub.deploy(ref, name, port=port, timeout=60)
        returned = time.perf_counter() - t0
        endpoint = getattr(status, "endpoint", "") or f"http://{HOST}:{port}"
        dep_port = int(endpoint.rstrip("/").rsplit(":", 1)[1])
        done = wait_first_answer(dep_port, f"/v2/models/{MODEL}/infer", body, t0 + 60)
        return {
            "ref": ref,
            "returned": returned,
            "first_answer": (done - t0) if done is not None else None,
            "phase": getattr(status, "phase", "?"),
            "replicas": getattr(status, "ready_replicas", "?"),
        }
    except Exception as exc:  # the deployment API is young: report, do not crash the benchmark
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    finally:
        try:
            hub.stop(name)
        except Exception as exc:
            print(f"  (hub.stop({name!r}) failed: {exc}; killing its supervisor)")
            _kill_deployment(Path(hub.path), name)


def _kill_deployment(hub_root: Path, name: str) -> None:
    """Last resort after a failed ``hub.stop``: SIGTERM the supervisor's session."""
    state = hub_root / ".modelhub" / "runtime" / "deployments" / name / "state.json"
    with contextlib.suppress(Exception):
        doc = json.loads(state.read_text())
        pid = int(doc.get("supervisor_pid") or doc.get("pid"))
        os.killpg(os.getpgid(pid), signal.SIGTERM)


# == profiling (``--profile``) ======================================================================
def profile_server(py_spy: str, server: Server, concurrency: int, seconds: float,
                   tmp: Path, top: int = 20) -> None:  # fmt: skip
    """py-spy samples ``server``'s main thread (idle time included) while the load runs."""
    assert server.proc is not None
    raw = tmp / f"profile-{server.key}-{concurrency}.txt"
    spy = subprocess.Popen(
        ["taskset", "-c", CLIENT_CPU, py_spy, "record", "--pid", str(server.proc.pid),
         "--format", "raw", "--output", str(raw), "--rate", "250", "--idle", "--threads", "--full-filenames",
         "--function", "--nonblocking", "--duration", str(int(seconds + 2))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(0.5)
    result = run_load(server, concurrency, 1.0, seconds, tmp)
    try:
        _, err = spy.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if not raw.exists():
        print(f"\n--- profile of {server.label}: py-spy failed: {err.decode()[-500:]}")
        return
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    category: dict[str, int] = {}
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or "MainThread" not in frames[0]:
            continue  # the event loop runs on the main thread; others only wait
        frames = frames[1:]
        if not frames:
            continue
        count = int(count_s)
        total += count
        if frames and "select (" in frames[-1] and "selectors.py" in frames[-1]:
            idle += count
            continue
        kind = _category(frames)
        category[kind] = category.get(kind, 0) + count
        short = [_short_frame(f) for f in frames]
        own[short[-1]] = own.get(short[-1], 0) + count
        for f in set(short):
            if f.split(" (")[0] not in _WRAPPERS:
                inclusive[f] = inclusive.get(f, 0) + count
    if not total:
        print(f"\n--- profile of {server.label}: no samples of the main thread")
        return
    busy = total - idle
    print(
        f"\n--- profile: {server.label} at concurrency {concurrency}, {seconds:g} s, "
        f"{result['rps']:,.0f} req/s under py-spy (250 Hz, non-blocking); "
        f"{total} samples of the main thread ---"
    )
    print(f"  waiting in epoll (idle): {100 * idle / total:.1f}%   busy: {100 * busy / total:.1f}%")
    print("  busy time by the innermost known package (% of all samples):")
    for k, c in sorted(category.items(), key=lambda kv: -kv[1]):
        print(f"    {100 * c / total:5.1f}%  {k}")
    print("  own time (the function itself):")
    for f, c in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {100 * c / total:5.1f}%  {f}")
    print("  inclusive time (the function and what it calls; event-loop plumbing left out):")
    for f, c in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {100 * c / total:5.1f}%  {f}")


# event-loop plumbing under which every busy sample sits: left out of the inclusive list
_WRAPPERS = frozenset(
    ("_run_module_as_main", "_run_code", "<module>", "main", "serve", "_serve", "_run", "run",
     "Runner.run", "BaseEventLoop.run_forever", "BaseEventLoop.run_until_complete",
     "BaseEventLoop._run_once", "Handle._run", "floor_main", "BaseAsyncIOLoop.start")
)  # fmt: skip
_PACKAGES = (
    ("jupyter_modelhub/", "ours (handlers, codecs, batching, metrics glue)"),
    ("/prometheus_client/", "prometheus_client (metrics)"),
    ("/tornado/", "tornado (HTTP parsing, routing, writing)"),
    ("/asyncio/", "asyncio (event loop, futures)"),
    ("selectors.py", "asyncio (event loop, futures)"),
)


def _category(frames: list[str]) -> str:
    """Where a busy sample's time goes: the model call, or the innermost known package."""
    if any(".predict (" in f and "jupyter_modelhub/serving/runtime.py" in f for f in frames):
        return "model call (the runtime's predict: onnxruntime / scikit-learn)"
    for frame in reversed(frames):
        for needle, name in _PACKAGES:
            if needle in frame:
                return name
    return "other (stdlib, numpy…)"


def _short_frame(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (dir/file.py:123)``."""
    frame = frame.strip()
    if "(" in frame and frame.endswith(")"):
        func, _, where = frame[:-1].partition(" (")
        parts = where.replace("\\", "/").split("/")
        where = "/".join(parts[-2:])
        return f"{func} ({where})"
    return frame


# == main =========================================================================================
def mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=15.0,
        help="measured seconds per server and level (default 15)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="warm-up seconds before a server's first round at a level (default 2)",
    )
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels (default 1,8,32)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="split each measurement into this many segments, the servers taking turns",
    )
    parser.add_argument(
        "--rewarm", type=float, default=0.5, help="warm-up seconds before each later round"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow")
    parser.add_argument(
        "--onnx-batch",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also measure ours-onnx with --max-batch-size N (repeatable)",
    )
    parser.add_argument("--mlflow-python", help="python of a venv with MLflow 3")
    parser.add_argument("--no-deploy", action="store_true", help="skip the hub.deploy start-up")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="append py-spy profiles: the floor at the highest level, ours at the lowest and highest",
    )
    parser.add_argument("--_loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--_floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._loadgen:
        return loadgen_main(args._loadgen)
    if args._floor is not None:
        return floor_main(args._floor)
    return bench(args)


def bench(args: argparse.Namespace) -> int:
    # Measure this checkout's code, even when some (other) jupyter_modelhub is installed.
    if (REPO_ROOT / "jupyter_modelhub" / "__init__.py").exists():
        sys.path.insert(0, str(REPO_ROOT))
    import pickle

    import numpy as np

    import jupyter_modelhub
    from jupyter_modelhub import Hub

    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    top = max(levels)
    print(f"load average at the start: {loadavg()}")
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        print("  (fewer than 2 CPUs: server and load generator share one; figures meaningless)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    servers: dict[str, Server] = {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    results: dict[tuple[str, int], dict[str, Any]] = {}
    labels: dict[str, str] = {}
    hub = None
    try:
        # -- the model, the hub, the MLflow copy ------------------------------------------------
        model, X = build_model()
        hub = Hub.init(tmp / "hub")
        t = time.perf_counter()
        version = hub.register(model, MODEL, sample=X, onnx=True)
        print(f"code: {checkout_state()}")
        print(
            f"model: LogisticRegression, {N_FEATURES} features, seed {SEED}; registered as "
            f"{MODEL}@{version.version} with ONNX in {time.perf_counter() - t:.1f} s "
            f"(jupyter_modelhub {jupyter_modelhub.__version__})"
        )
        rows = X[:64]
        v2_fp32 = [
            json.dumps({"inputs": [{"name": "input", "shape": [1, N_FEATURES], "datatype": "FP32",
                                    "data": [float(np.float32(v)) for v in r]}]}).encode()
            for r in rows
        ]  # fmt: skip
        v2_fp64 = [
            json.dumps({"inputs": [{"name": "input", "shape": [1, N_FEATURES], "datatype": "FP64",
                                    "data": r.tolist()}]}).encode()
            for r in rows
        ]  # fmt: skip
        inputs = [json.dumps({"inputs": [r.tolist()]}).encode() for r in rows]
        split = [
            json.dumps({"dataframe_split": {"columns": list(range(N_FEATURES)),
                                            "data": [r.tolist()]}}).encode()
            for r in rows
        ]  # fmt: skip
        infer_path = f"/v2/models/{MODEL}/infer"

        mlflow_python = None if args.no_mlflow else find_mlflow_python(args.mlflow_python)
        mlflow_dir = tmp / "mlflow-model"
        if not args.no_mlflow and mlflow_python is None:
            print(f"MLflow skipped: no MLflow venv. Set one up with\n{MLFLOW_SETUP}")
        if mlflow_python is not None:
            (tmp / "model.pkl").write_bytes(pickle.dumps(model))
            np.save(tmp / "X.npy", X[:200])
            saved = subprocess.run(
                [str(mlflow_python), "-c", MLFLOW_SAVE, str(tmp / "model.pkl"),
                 str(tmp / "X.npy"), str(mlflow_dir)],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if saved.returncode != 0:
                print(f"MLflow skipped: save_model failed: {saved.stderr[-1500:]}")
                mlflow_python = None
            else:
                mlflow_version, mlflow_sklearn = saved.stdout.split()[-2:]
                import sklearn

                print(
                    f"MLflow {mlflow_version} (scikit-learn {mlflow_sklearn} there, "
                    f"{sklearn.__version__} here): mlflow.sklearn.save_model of the same object"
                )

        # -- servers, each started alone and timed to its first answer --------------------------
        ours = [sys.executable, "-m", "jupyter_modelhub.modelserver", MODEL, "--hub",
                str(tmp / "hub"), "--host", HOST]  # fmt: skip
        port = free_port()
        servers["floor"] = Server(
            "floor", "floor: bare tornado, constant JSON",
            [sys.executable, str(SCRIPT), "--_floor", str(port)], port, infer_path, v2_fp32,
            env=env, cwd=tmp,
        )  # fmt: skip
        if mlflow_python is not None:
            port = free_port()
            mlflow_bin = mlflow_python.parent  # `mlflow models serve` runs `uvicorn` from PATH
            mlflow_env = {**os.environ, "PATH": f"{mlflow_bin}{os.pathsep}{os.environ['PATH']}",
                          "VIRTUAL_ENV": str(mlflow_bin.parent)}  # fmt: skip
            mlflow_env.pop("PYTHONPATH", None)
            servers["mlflow"] = Server(
                "mlflow", f"MLflow {mlflow_version} models serve (inputs)",
                [str(mlflow_python.with_name("mlflow")), "models", "serve", "-m", str(mlflow_dir),
                 "--env-manager", "local", "-p", str(port), "-h", HOST, "-w", "1"],
                port, "/invocations", inputs, env=mlflow_env, cwd=tmp,
            )  # fmt: skip
        port = free_port()
        servers["onnx"] = Server(
            "onnx", "ours, --runtime onnx (v2 infer)",
            [*ours, "--port", str(port), "--runtime", "onnx"], port, infer_path, v2_fp32,
            env=env, cwd=tmp,
        )  # fmt: skip
        port = free_port()
        servers["sklearn"] = Server(
            "sklearn", "ours, --runtime sklearn (v2 infer)",
            [*ours, "--port", str(port), "--runtime", "sklearn"], port, infer_path, v2_fp64,
            env=env, cwd=tmp,
        )  # fmt: skip
        for n in args.onnx_batch:
            port = free_port()
            servers[f"onnx-b{n}"] = Server(
                f"onnx-b{n}", f"ours, --runtime onnx --max-batch-size {n}",
                [*ours, "--port", str(port), "--runtime", "onnx", "--max-batch-size", str(n)],
                port, infer_path, v2_fp32, env=env, cwd=tmp,
            )  # fmt: skip
        print("\nStart-up: process start (taskset -c 0) to the first answered request")
        for s in servers.values():
            s.start(tmp)
            print(f"  {s.label:<44} {s.first_answer_s:6.2f} s")

        # -- correctness: the same model behind every server ------------------------------------
        want = model.predict_proba(X[:1])[0]
        for key, body in (("onnx", v2_fp32[0]), ("sklearn", v2_fp64[0])):
            status, answer = http_call(servers[key].port, "POST", infer_path, body)
            doc = json.loads(answer)
            proba = next(o for o in doc["outputs"] if o["name"] == "predict_proba")["data"]
            ok = status == 200 and np.allclose(proba, want, atol=1e-5)
            print(f"  check {key}: status {status}, predict_proba {np.round(proba, 5).tolist()} "
                  f"(sklearn {np.round(want, 5).tolist()}) {'ok' if ok else 'MISMATCH'}")  # fmt: skip
        if "mlflow" in servers:
            status, answer = http_call(servers["mlflow"].port, "POST", "/invocations", inputs[0])
            print(f"  check mlflow: status {status}, {answer[:80].decode(errors='replace')} "
                  f"(sklearn predict {model.predict(X[:1]).tolist()})")  # fmt: skip
            status, answer = http_call(servers["mlflow"].port, "POST", "/invocations", split[0])
            if status != 200:
                print(f"  mlflow dataframe_split answered {status}: {answer[:200]!r}; skipped")
                split = []
        status, answer = http_call(servers["onnx"].port, "POST", "/invocations", inputs[0])
        print(f"  check ours /invocations: status {status}, {answer[:80].decode(errors='replace')}")

        # -- hub.deploy: from the call to the first answer --------------------------------------
        deploy = (
            {"skipped": "--no-deploy"}
            if args.no_deploy
            else measure_deploy(hub, version.ref, v2_fp32[0])
        )

        # -- load: at each level the servers take turns, in rounds ----------------------------
        mlflow_label = servers["mlflow"].label if "mlflow" in servers else ""
        targets: list[tuple[str, str, str, str, list[bytes], list[int]]] = [
            (key, servers[key].label, key, servers[key].path, servers[key].bodies, levels)
            for key in servers
        ]  # fmt: skip
        targets.append(("onnx-invocations", "ours, --runtime onnx (/invocations, inputs)",
                        "onnx", "/invocations", inputs, [top]))  # fmt: skip
        if "mlflow" in servers and split:
            targets.append(("mlflow-split", mlflow_label.replace("(inputs)", "(dataframe_split)"),
                            "mlflow", "/invocations", split, [min(levels)]))  # fmt: skip
        labels.update({t[0]: t[1] for t in targets})
        rounds = max(1, args.rounds)
        segment = args.duration / rounds
        n_runs = sum(len(t[5]) for t in targets)
        estimate = n_runs * (
            args.duration + args.warmup + (rounds - 1) * args.rewarm + rounds * 0.3
        )
        print(
            f"\nLoad: {n_runs} server x level runs of {args.warmup:g} s warm-up + {args.duration:g} s "
            f"measured, in {rounds} rounds of {segment:g} s taken in turn (each later round after "
            f"{args.rewarm:g} s of warm-up on fresh connections): ~{estimate / 60:.1f} min"
        )
        for c in levels:
            at_level = [t for t in targets if c in t[5]]
            segments: dict[str, list[dict[str, Any]]] = {t[0]: [] for t in at_level}
            for rnd in range(rounds):
                shift = rnd % len(at_level)
                for key, _, server_key, path, bodies, _ in at_level[shift:] + at_level[:shift]:
                    warm = args.warmup if rnd == 0 else args.rewarm
                    segments[key].append(
                        run_segment(servers[server_key], path, bodies, c, warm, segment, tmp)
                    )
            for key, label, *_ in at_level:
                r = results[(key, c)] = summarize(segments[key], c)
                print(f"  {label:<44} c={c:<3} {r['rps']:8,.0f} req/s  p50 {r['p50']:.3f} ms  "
                      f"p99 {r['p99']:.3f} ms  errors {r['all_errors']}  (rounds: "
                      + " ".join(f"{x:,.0f}" for x in r["rps_segments"]) + ")",
                      flush=True)  # fmt: skip

        # -- the report --------------------------------------------------------------------------
        print_report(args, servers, labels, results, deploy, levels, top)
        if args.profile:
            py_spy = find_py_spy()
            if py_spy is None:
                print("\n--profile: py-spy not found (pip install py-spy, or PY_SPY=PATH)")
            else:
                for key in ("floor", "onnx", "sklearn"):
                    for c in [top] if key == "floor" else sorted({min(levels), top}):
                        profile_server(py_spy, servers[key], c, min(args.duration, 10.0), tmp)
        print(f"\nload average at the end: {loadavg()}")
        if os.getloadavg()[0] > 1.5:
            print("  (above 1.5: other work shared these CPUs; see the server CPU % column)")
        return 0
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def print_report(args: argparse.Namespace, servers: dict[str, Server], labels: dict[str, str],
                 results: dict[tuple[str, int], dict[str, Any]], deploy: dict[str, Any],
                 levels: list[int], top: int) -> None:  # fmt: skip
    print(
        f"\nSingle-row JSON requests, 1 replica, server on CPU {SERVER_CPU}, load generator on CPU "
        f"{CLIENT_CPU}, keep-alive, {args.duration:g} s measured per server and level "
        f"({max(1, args.rounds)} rounds in turn):"
    )
    header = (
        f"  {'server':<44} {'conn':>4} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'errors':>6} {'srv CPU':>7} {'srv us/req':>10} {'cli us/req':>10} "
        f"{'req/call':>8}"
    )
    print(header)

    def row(label: str, r: dict[str, Any]) -> None:
        print(
            f"  {label:<44} {r['concurrency']:>4} {r['rps']:8,.0f} {r['p50']:7.3f} {r['p90']:7.3f} "
            f"{r['p99']:7.3f} {r['max']:7.2f} {r['all_errors']:>6} {r['server_cpu_pct']:6.0f}% "
            f"{r['server_us_per_req']:10.0f} {r['client_us_per_req']:10.0f} "
            + (f"{r['requests_per_call']:8.1f}" if r["requests_per_call"] else f"{'-':>8}")
        )

    for key, label in labels.items():
        for c in levels:
            if (key, c) in results:
                row(label, results[(key, c)])
    bad = {f"{k}@{c}": r["statuses"] for (k, c), r in results.items() if r["errors"] or r["broken"]}
    if bad:
        print(f"  errors by status (broken connections not listed): {bad}")

    def rps(key: str) -> float | None:
        r = results.get((key, top))
        return r["rps"] if r else None

    def per_round(num: str, den: str) -> str:
        """The median over rounds of the two servers' req/s ratio in the same round."""
        a, b = results.get((num, top)), results.get((den, top))
        if not a or not b:
            return "-"
        ratios = sorted(
            x / y for x, y in zip(a["rps_segments"], b["rps_segments"], strict=True) if y > 0
        )
        return f"{statistics.median(ratios):.2f}x" if ratios else "-"

    print("\nAgainst the floors (this run's figures):")
    print(f"  {'check':<50} {'measured':>10} {'by round':>9} {'floor':>10}  result")
    checks: list[tuple[str, str, str, str, bool | None]] = []
    fl = rps("floor")
    for num, den, name, floor_value in (
        ("onnx", "floor", "ours-onnx / bare tornado", FLOOR_ONNX_VS_FLOOR),
        ("onnx", "mlflow", "ours-onnx / MLflow", FLOOR_ONNX_VS_MLFLOW),
        ("sklearn", "mlflow", "ours-sklearn / MLflow", FLOOR_SKLEARN_VS_MLFLOW),
    ):
        x, y = rps(num), rps(den)
        v = x / y if x and y else None
        checks.append((f"{name}, req/s at {top}", f"{v:.2f}x" if v else "-", per_round(num, den),
                       f">= {floor_value:g}x", None if v is None else v >= floor_value))  # fmt: skip
    if ("onnx", 1) in results:
        v = results[("onnx", 1)]["p99"]
        checks.append(("ours-onnx p99 at concurrency 1", f"{v:.3f} ms", "", f"< {FLOOR_ONNX_P99_MS} ms",
                       v < FLOOR_ONNX_P99_MS))  # fmt: skip
    first = deploy.get("first_answer")
    if "skipped" in deploy:
        checks.append(
            ("hub.deploy() to the first answer", "-", "", f"< {FLOOR_DEPLOY_S:g} s", None)
        )
    else:
        checks.append(("hub.deploy() to the first answer",
                       f"{first:.2f} s" if first is not None else "none", "",
                       f"< {FLOOR_DEPLOY_S:g} s", first is not None and first < FLOOR_DEPLOY_S))  # fmt: skip
    errors = sum(r["all_errors"] for r in results.values())
    checks.append(("errors, every run (non-200 or broken connection)", str(errors), "", "0",
                   errors == 0))  # fmt: skip
    for name, measured, by_round, floor, ok in checks:
        print(f"  {name:<50} {measured:>10} {by_round:>9} {floor:>10}  {mark(ok)}")
    bare = results.get(("floor", min(levels)))
    if bare and bare["p99"] >= FLOOR_ONNX_P99_MS:
        print(
            f"  (the bare tornado handler's own p99 at {min(levels)} was {bare['p99']:.3f} ms: "
            "above the p99 floor, so here the machine's load, not the server, sets the p99)"
        )
    if fl:
        others = [(lbl, x / fl) for k, lbl in (("sklearn", "ours-sklearn"), ("mlflow", "MLflow"))
                  if (x := rps(k)) is not None]  # fmt: skip
        if others:
            print(f"  (req/s at {top} over the bare tornado handler's: "
                  + ", ".join(f"{lbl} {ratio:.2f}x" for lbl, ratio in others) + ")")  # fmt: skip
    cpu = {k: results[(k, top)]["server_us_per_req"] for k in servers if (k, top) in results}

    if cpu:
        print(
            f"  (server CPU per request at {top}, which other load on the machine disturbs less: "
            + ", ".join(f"{k} {v:.0f} us" for k, v in cpu.items())
            + (f"; floor / ours-onnx {cpu['floor'] / cpu['onnx']:.2f}x" if "floor" in cpu and
               "onnx" in cpu else "")
            + ")"
        )  # fmt: skip

    print("\nStart-up, process start to the first answered request (each started alone):")
    for s in servers.values():
        print(f"  {s.label:<44} {s.first_answer_s:6.2f} s")
    if "skipped" in deploy:
        print(f"  hub.deploy(): skipped ({deploy['skipped']})")
    else:
        print(
            f"  hub.deploy('{deploy['ref']}') to the first answer: "
            + (f"{first:.2f} s" if first is not None else "never")
            + f" (deploy() returned after {deploy['returned']:.2f} s, phase {deploy['phase']}, "
            f"{deploy['replicas']} ready replica(s); then hub.stop())"
        )


if __name__ == "__main__":
    sys.exit(main())
