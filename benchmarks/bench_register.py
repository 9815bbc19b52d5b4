"""Benchmark: registering a 100 MB artifact as a new version, side by side in one run.

Three ways of doing the same job (hash, store, commit, tag) on the same bytes:

  ours     ``Hub.register(path, "bench")`` into a fresh hub, timed in-process after one
           warm-up registration (imports paid).
  by hand  ``dvc add FILE`` + ``git add FILE.dvc .gitignore`` + ``git commit`` + ``git tag -a``
           (GTO's tag format) as subprocesses in a fresh git + DVC repository.
  MLflow   ``mlflow.start_run(); mlflow.log_artifact(FILE); create_model_version(...)`` with a
           sqlite tracking store, in its own venv (``/work/mlflow-venv``) so that its
           dependencies cannot disturb ours; a long-lived child process, warmed up once.

Every repeat registers a NEW random file (fixed seeds) as the next version of ``bench``; the
three methods take turns in a rotating order, after ``os.sync()`` so that dirty pages of one
method are not written back on another's clock. Then each method re-registers identical bytes
(timed), and once more, untimed, with the disk watched: content addressing should cost ~0 bytes.

Run from the repository root:  python benchmarks/bench_register.py [--repeat 5] [--size-mb 100]
The figures are for the team's notes; this is not a pass/fail test (exit status 0).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Measure this checkout's code, even when some (other) jupyter_modelhub is installed.
if (REPO_ROOT / "jupyter_modelhub" / "__init__.py").exists():
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")

import jupyter_modelhub  # noqa: E402
from jupyter_modelhub import Hub  # noqa: E402

MB = 1024 * 1024
DEFAULT_MLFLOW_VENV = Path(os.environ.get("MLFLOW_VENV", "/work/mlflow-venv"))
FLOOR_BY_HAND = 0.5  # ours / by hand, at most
FLOOR_MLFLOW = 2.0  # ours / MLflow, at most
FLOOR_DISK = 1 * MB  # peak extra disk of an identical re-registration, "~0"

MLFLOW_SETUP = f"""\
  python3 -m venv {DEFAULT_MLFLOW_VENV}
  {DEFAULT_MLFLOW_VENV}/bin/pip install 'mlflow>=3,<4'
(or point MLFLOW_VENV / --mlflow-python at another venv with MLflow 3)"""


# -- helpers -----------------------------------------------------------------------------------
def make_file(path: Path, size: int, seed: int) -> Path:
    """``size`` random bytes from a fixed seed (the same seed gives the same bytes)."""
    rng = random.Random(seed)
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(left, 16 * MB)
            out.write(rng.randbytes(n))
            left -= n
    return path


def settle() -> None:
    """Write back dirty pages before a timed step, so nobody pays for another's writes."""
    gc.collect()
    os.sync()


def allocated_bytes(root: Path) -> int:
    """Disk blocks used under ``root`` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue  # a temporary file renamed or removed under our feet
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_blocks * 512
    return total


class DiskWatch:
    """Samples the disk used under ``root`` every few ms; gives (peak, final) growth."""

    def __init__(self, root: Path, interval: float = 0.002) -> None:
        self.root = root
        self.interval = interval
        self.base = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, allocated_bytes(self.root))
            time.sleep(self.interval)

    def __enter__(self) -> DiskWatch:
        self.base = self.peak = allocated_bytes(self.root)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.final = allocated_bytes(self.root)
        self.peak = max(self.peak, self.final)

    @property
    def peak_extra(self) -> int:
        return self.peak - self.base

    @property
    def final_extra(self) -> int:
        return self.final - self.base


def proc_io() -> dict[str, int]:
    """This process's read/write byte counters (``rchar``/``wchar`` count page-cache I/O too)."""
    try:
        lines = Path("/proc/self/io").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v) for k, v in (line.split(": ") for line in lines)}


class Md5Counter:
    """Counts the bytes fed to ``hashlib.md5`` while installed (instrumented runs only)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._orig = hashlib.md5

    def __enter__(self) -> Md5Counter:
        counter, orig = self, self._orig

        class Counting:
            def __init__(self, data: bytes = b"", **kw: object) -> None:
                self._h = orig(**kw)
                if data:
                    self.update(data)

            def update(self, data: bytes) -> None:
                counter.bytes += len(data)
                self._h.update(data)

            def __getattr__(self, name: str) -> object:
                return getattr(self._h, name)

        hashlib.md5 = Counting  # type: ignore[assignment,misc]
        return self

    def __exit__(self, *exc: object) -> None:
        hashlib.md5 = self._orig  # type: ignore[misc]


def fmt_mb(n: float) -> str:
    return f"{n / MB:8.1f} MB"


# -- ours ----------------------------------------------------------------------------------------
class Ours:
    label = "ours: Hub.register(path)"

    def __init__(self, root: Path) -> None:
        self.root = root / "hub"
        self.hub = Hub.init(self.root)

    def register(self, src: Path) -> float:
        settle()
        t0 = time.perf_counter()
        self.hub.register(src, "bench")
        return time.perf_counter() - t0

    def instrumented(self, src: Path, size: int) -> dict[str, float]:
        """An untimed registration with the disk watched, md5 bytes and I/O counted."""
        settle()
        io0 = proc_io()
        with DiskWatch(self.root) as disk, Md5Counter() as md5:
            self.hub.register(src, "bench")
        io1 = proc_io()
        out = {
            "peak_extra": disk.peak_extra,
            "final_extra": disk.final_extra,
            "md5_passes": md5.bytes / size,
        }
        if io0 and io1:
            out["read_passes"] = (io1["rchar"] - io0["rchar"]) / size
            out["write_passes"] = (io1["wchar"] - io0["wchar"]) / size
        return out


def profile_ours(ours: Ours, src: Path, top: int = 15) -> None:
    import cProfile
    import io
    import pstats

    settle()
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    ours.hub.register(src, "bench")
    prof.disable()
    took = time.perf_counter() - t
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    body = "\n".join(
        line for line in out.getvalue().splitlines() if line.strip() and "Ordered by" not in line
    )
    print(
        f"\n--- profile: ours, Hub.register of new bytes: {took:.3f} s under cProfile ---\n{body}"
    )


# -- by hand: dvc add + git commit + git tag -------------------------------------------------------
class ByHand:
    label = "by hand: dvc add + git commit + tag"
    steps = ("dvc add", "git add", "git commit", "git tag -a")

    def __init__(self, root: Path) -> None:
        self.root = root / "byhand"
        self.root.mkdir()
        dvc = Path(sys.executable).with_name("dvc")
        self.dvc = str(dvc) if dvc.exists() else (shutil.which("dvc") or "dvc")
        self.env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        self.version = 0
        self.workfile = self.root / "models" / "bench" / "model.bin"
        self.run("git", "init", "-q", "-b", "main")
        if not self.run("git", "config", "user.name", check=False).strip():
            self.run("git", "config", "user.name", "bench")
            self.run("git", "config", "user.email", "bench@localhost")
        self.run(self.dvc, "init", "-q")
        self.run("git", "commit", "-q", "-m", "Initialise DVC")
        self.workfile.parent.mkdir(parents=True)

    def run(self, *cmd: str, check: bool = True) -> str:
        proc = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr or proc.stdout}")
        return proc.stdout

    def place(self, src: Path) -> None:
        """Put the file in the workspace (untimed): a new inode, so DVC must hash it."""
        if self.workfile.exists():
            self.workfile.chmod(0o644)
            self.workfile.unlink()
        shutil.copyfile(src, self.workfile)

    def register(self, src: Path, allow_empty: bool = False) -> tuple[float, list[float]]:
        self.place(src)
        self.version += 1
        version = f"v0.0.{self.version}"
        rel = "models/bench/model.bin"
        commit = ["git", "commit", "-q", "-m", f"Register bench {version}"]
        if allow_empty:  # identical bytes: the .dvc file does not change
            commit.insert(2, "--allow-empty")
        cmds = [
            [self.dvc, "add", "-q", rel],
            ["git", "add", f"{rel}.dvc", "models/bench/.gitignore"],
            commit,
            [
                "git",
                "tag",
                "-a",
                f"bench@{version}",
                "-m",
                f"Registering artifact bench version {version}",
            ],
        ]
        settle()
        parts = []
        t0 = time.perf_counter()
        for cmd in cmds:
            t = time.perf_counter()
            self.run(*cmd)
            parts.append(time.perf_counter() - t)
        return time.perf_counter() - t0, parts

    def instrumented(self, src: Path) -> dict[str, float]:
        self.place(src)
        self.version += 1
        version = f"v0.0.{self.version}"
        rel = "models/bench/model.bin"
        settle()
        with DiskWatch(self.root) as disk:
            self.run(self.dvc, "add", "-q", rel)
            self.run("git", "add", f"{rel}.dvc", "models/bench/.gitignore")
            self.run("git", "commit", "--allow-empty", "-q", "-m", f"Register bench {version}")
            self.run(
                "git",
                "tag",
                "-a",
                f"bench@{version}",
                "-m",
                f"Registering artifact bench version {version}",
            )
        return {"peak_extra": disk.peak_extra, "final_extra": disk.final_extra}


# -- MLflow 3, in its own venv -------------------------------------------------------------------
MLFLOW_CHILD = textwrap.dedent(
    """
    # Runs in the MLflow venv. Reads one JSON request per line on stdin, answers one JSON line.
    import json, os, sys, time
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever MLflow prints goes to stderr, our answers stay parseable
    t0 = time.perf_counter()
    import mlflow
    from mlflow import MlflowClient
    root = sys.argv[1]
    mlflow.set_tracking_uri("sqlite:///" + os.path.join(root, "mlflow.db"))
    mlflow.create_experiment("bench", artifact_location="file://" + os.path.join(root, "artifacts"))
    mlflow.set_experiment("bench")
    client = MlflowClient()
    client.create_registered_model("bench")
    out.write(json.dumps({"ready": True, "mlflow": mlflow.__version__,
                          "setup_s": time.perf_counter() - t0}) + "\\n")
    for line in sys.stdin:
        req = json.loads(line)
        t = time.perf_counter()
        # MLflow 3's register_model() only registers logged models ("Unable to find a
        # logged_model with artifact_path ..."), so a raw file is registered as a model version
        # whose source is the run's artifact folder.
        with mlflow.start_run() as run:
            mlflow.log_artifact(req["path"], artifact_path="model")
            mv = client.create_model_version(
                "bench", source=mlflow.get_artifact_uri("model"), run_id=run.info.run_id
            )
        seconds = time.perf_counter() - t
        out.write(json.dumps({"seconds": seconds, "version": mv.version,
                              "status": mv.status}) + "\\n")
    """
)


class MLflow:
    label = "MLflow 3: log_artifact + model version"

    def __init__(self, root: Path, python: Path) -> None:
        self.root = root / "mlflow"
        self.root.mkdir()
        script = root / "mlflow_child.py"
        script.write_text(MLFLOW_CHILD)
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
        env.pop("PYTHONPATH", None)
        self.stderr = open(root / "mlflow_child.log", "w")  # noqa: SIM115 - lives with the child
        self.proc = subprocess.Popen(
            [str(python), str(script), str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
            cwd=self.root,
        )
        hello = self._read()
        self.version = hello["mlflow"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self.stderr.flush()
            log = Path(self.stderr.name).read_text()[-2000:]
            raise RuntimeError(f"the MLflow child died:\n{log}")
        return json.loads(line)

    def register(self, src: Path) -> float:
        settle()
        self.proc.stdin.write(json.dumps({"path": str(src)}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return float(self._read()["seconds"])

    def instrumented(self, src: Path) -> dict[str, float]:
        settle()
        with DiskWatch(self.root) as disk:
            self.register(src)
        return {"peak_extra": disk.peak_extra, "final_extra": disk.final_extra}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


# -- the run -------------------------------------------------------------------------------------
def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh registrations per method")
    parser.add_argument("--size-mb", type=int, default=100, help="artifact size (MiB)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument(
        "--mlflow-python",
        type=Path,
        default=DEFAULT_MLFLOW_VENV / "bin" / "python",
        help="python of a venv with MLflow 3 (default: $MLFLOW_VENV/bin/python)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print cProfile of one more registration of ours (new bytes)",
    )
    args = parser.parse_args()
    repeat = max(1, min(args.repeat, 50))  # bounded
    size = args.size_mb * MB

    print(
        f"bench_register: {args.size_mb} MiB random artifact, {repeat} fresh registrations "
        f"per method, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}\ncode: {Path(jupyter_modelhub.__file__).parent}"
    )

    mlflow_python = args.mlflow_python
    use_mlflow = not args.no_mlflow
    if use_mlflow and not mlflow_python.exists():
        print(
            f"\nNOTE: no MLflow venv at {mlflow_python}: MLflow is skipped. Set it up with:\n"
            f"{MLFLOW_SETUP}\n"
        )
        use_mlflow = False

    tmp = Path(tempfile.mkdtemp(prefix="modelhub-bench-register-"))
    mlflow = None
    try:
        files = tmp / "src"
        files.mkdir()
        print("making the random files ...", flush=True)
        warm = make_file(files / "warmup.bin", size, args.seed)

        ours = Ours(tmp)
        by_hand = ByHand(tmp)
        if use_mlflow:
            try:
                mlflow = MLflow(tmp, mlflow_python)
            except Exception as exc:
                print(f"\nNOTE: MLflow could not start, skipped: {exc}\n")
                mlflow = None

        methods: dict[str, object] = {"ours": ours, "by hand": by_hand}
        if mlflow:
            methods["MLflow"] = mlflow
        times: dict[str, list[float]] = {k: [] for k in methods}
        hand_parts: list[list[float]] = []

        def run(key: str, src: Path, identical: bool = False, count: bool = True) -> float:
            if key == "by hand":
                seconds, parts = by_hand.register(src, allow_empty=identical)
                if count and not identical:
                    hand_parts.append(parts)
                return seconds
            return methods[key].register(src)  # type: ignore[attr-defined]

        print("warming up (one registration each, not counted) ...", flush=True)
        warmup = {key: run(key, warm, count=False) for key in methods}

        keys = list(methods)
        last = warm
        for i in range(repeat):
            src = make_file(files / f"v{i}.bin", size, args.seed + 1 + i)
            order = keys[i % len(keys) :] + keys[: i % len(keys)]
            for key in order:
                times[key].append(run(key, src))
            print(
                f"  repeat {i + 1}/{repeat}: "
                + ", ".join(f"{k} {times[k][-1]:.3f} s" for k in keys),
                flush=True,
            )
            if last != warm:
                last.unlink()
            last = src

        # Identical bytes again: timed, then once more with the disk watched (untimed).
        same = {key: run(key, last, identical=True) for key in keys}
        disk = {"ours": ours.instrumented(last, size), "by hand": by_hand.instrumented(last)}
        if mlflow:
            disk["MLflow"] = mlflow.instrumented(last)
        fresh_src = make_file(files / "instrumented.bin", size, args.seed + 1000)
        fresh = ours.instrumented(fresh_src, size)

        # -- report ----------------------------------------------------------------------------
        labels = {"ours": Ours.label, "by hand": ByHand.label, "MLflow": MLflow.label}
        if mlflow:
            labels["MLflow"] += f" ({mlflow.version})"
        print()
        print(
            f"Registering a {args.size_mb} MiB artifact as a new version "
            f"({repeat} fresh files each, rotating order):"
        )
        print(f"  {'method':<52} {'median s':>9} {'min s':>8} {'max s':>8} {'warm-up s':>10}")
        for key in keys:
            ts = times[key]
            print(
                f"  {labels[key]:<52} {statistics.median(ts):9.3f} {min(ts):8.3f} "
                f"{max(ts):8.3f} {warmup[key]:10.3f}"
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            "\n  by hand, median per step: "
            + ", ".join(
                f"{name} {statistics.median(p[j] for p in hand_parts):.3f} s"
                for j, name in enumerate(ByHand.steps)
            )
        )
        print()
        print("  ratio                 median   (min/min)   floor    result")
        r = med["ours"] / med["by hand"]
        rm = min(times["ours"]) / min(times["by hand"])
        print(
            f"  ours / by hand      {r:8.3f}   ({rm:7.3f})   <= {FLOOR_BY_HAND:<4}   "
            f"{mark(r <= FLOOR_BY_HAND)}"
        )
        if mlflow:
            r = med["ours"] / med["MLflow"]
            rm = min(times["ours"]) / min(times["MLflow"])
            print(
                f"  ours / MLflow       {r:8.3f}   ({rm:7.3f})   <= {FLOOR_MLFLOW:<4}   "
                f"{mark(r <= FLOOR_MLFLOW)}"
            )
        else:
            print("  ours / MLflow       skipped (no MLflow venv)")

        print()
        print("Re-registering identical bytes as a new version:")
        print(f"  {'method':<52} {'time s':>8} {'peak extra disk':>16} {'final extra':>12}")
        for key in keys:
            d = disk[key]
            print(
                f"  {labels[key]:<52} {same[key]:8.3f} {fmt_mb(d['peak_extra']):>16} "
                f"{fmt_mb(d['final_extra']):>12}"
            )
        peak = disk["ours"]["peak_extra"]
        print(
            f"  ours, peak extra disk for identical bytes: {peak / MB:.1f} MB "
            f"(should be ~0 by content addressing; <= {FLOOR_DISK / MB:.0f} MB: "
            f"{mark(peak <= FLOOR_DISK)})"
        )
        print()
        print(
            "Ours, one instrumented (untimed) registration of new bytes "
            "(passes = bytes / artifact size):"
        )
        print(
            f"  md5 passes {fresh['md5_passes']:.2f}"
            + (
                f", bytes read (rchar) {fresh['read_passes']:.2f}, "
                f"bytes written (wchar) {fresh['write_passes']:.2f}"
                if "read_passes" in fresh
                else ""
            )
            + f", peak extra disk {fresh['peak_extra'] / MB:.1f} MB, "
            f"final {fresh['final_extra'] / MB:.1f} MB"
        )
        d = disk["ours"]
        print(
            f"  identical bytes: md5 passes {d['md5_passes']:.2f}"
            + (
                f", read {d['read_passes']:.2f}, written {d['write_passes']:.2f}"
                if "read_passes" in d
                else ""
            )
        )
        if args.profile:
            profile_ours(ours, make_file(files / "profiled.bin", size, args.seed + 2000))
        print(
            f"\n(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
            "other work on the machine shows up as spread between min and max)"
        )
        return 0
    finally:
        if mlflow:
            mlflow.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
