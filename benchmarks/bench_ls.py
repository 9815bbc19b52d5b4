"""Benchmark: ``ls`` (and ``show``/``versions``) over 1,000 models with 10,000 versions.

Building such a hub with real registrations would take too long, so the git objects are written
in bulk with ``git fast-import``: one commit per version that writes ``models/NAME/meta.yaml``
and ``models/NAME/artifact.dvc`` (plus ``.gitignore`` and the ``dvc.yaml`` artifact entry on a
model's first version), shaped after what one real ``Hub.register`` writes, and annotated tags in
GTO's exact format (``NAME@vX.Y.Z``, message "Registering artifact NAME version vX.Y.Z", tagger
line), plus stage tags (``NAME#prod#1`` for every model, ``NAME#staging#2`` for every tenth).

Measured twice: with the loose refs fast-import leaves (one file per tag), and after
``git pack-refs --all`` (the registry packs refs itself once there are 256 loose tags, so a hub
built by ``Hub.register`` is normally packed):

  cold        first ``Hub(path).ls()`` in a fresh process with the caches
              (``.modelhub/cache/``: parsed tags, ls summary) deleted; import time reported apart
  fresh proc  first ``Hub(path).ls()`` in a fresh process, caches present (a CLI call)
  warm        repeated ``ls()`` on one ``Hub``, median of 10
  show / versions   ``hub.show('model-0500@latest')``, ``hub.versions('model-0500')``, median of 10

and ``gto show --json`` once on the same repository for comparison (capped at 120 s).
The OS page cache is warm throughout (the repository was just written).

Run from the repository root:  python benchmarks/bench_ls.py [--models 1000] [--versions 10000]
The figures are for the team's notes; this is not a pass/fail test (exit status 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Measure this checkout's code, even when some (other) jupyter_modelhub is installed.
if (REPO_ROOT / "jupyter_modelhub" / "__init__.py").exists():
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")

import jupyter_modelhub  # noqa: E402
from jupyter_modelhub import Hub  # noqa: E402

FLOOR_LS = 0.2  # seconds
GTO_TIMEOUT = 120.0
TEMPLATE = "tmplmodel"

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from jupyter_modelhub import Hub
t1 = time.perf_counter()
models = Hub(sys.argv[1]).ls()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "ls_s": t2 - t1, "models": len(models),
                  "versions": sum(m.versions for m in models),
                  "prod": sum(1 for m in models if "prod" in m.stages),
                  "staging": sum(1 for m in models if "staging" in m.stages)}))
"""


def git(root: Path, *args: str, input: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=root, input=input, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {proc.stderr.decode()}")
    return proc.stdout.decode()


def template_files(tmp: Path) -> dict[str, str]:
    """Register one real version in a scratch hub and return the files it wrote."""
    src = tmp / "model.bin"
    src.write_bytes(os.urandom(4096))
    scratch = Hub.init(tmp / "scratch")
    version = scratch.register(src, TEMPLATE)
    folder = scratch.path / "models" / TEMPLATE
    files = {
        "meta.yaml": (folder / "meta.yaml").read_text(),
        "artifact.dvc": (folder / "artifact.dvc").read_text(),
        ".gitignore": (folder / ".gitignore").read_text(),
        "dvc.yaml": (scratch.path / "dvc.yaml").read_text(),
        "md5": version.meta.artifact.md5,
        "created": version.meta.created.isoformat(),
        "version": version.version,
    }
    tag = git(scratch.path, "cat-file", "-p", f"{TEMPLATE}@{files['version']}")
    files["tagger"] = re.search(r"^tagger (.*) <(.*)> \d+ [+-]\d{4}$", tag, re.M).groups()  # type: ignore[union-attr,assignment]
    return files


def build_stream(tpl: dict, n_models: int, n_versions: int, head: str, base: int) -> bytes:
    """A fast-import stream: a commit + GTO tag per version, then stage tags."""
    rng = random.Random(7)
    who, email = tpl["tagger"]
    names = [f"model-{i:04d}" for i in range(n_models)]
    per_model = [
        n_versions // n_models + (1 if i < n_versions % n_models else 0) for i in range(n_models)
    ]
    out: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n" % len(raw))
        out.append(raw)
        out.append(b"\n")

    dvc_yaml_head = "artifacts:\n"
    entry = tpl["dvc.yaml"].split("artifacts:\n", 1)[1]  # "  tmplmodel:\n    path: ...\n"
    dvc_entries: list[str] = []
    mark = 0
    marks: dict[tuple[int, int], int] = {}
    when = base
    first = True
    for rnd in range(max(per_model)):
        for i, name in enumerate(names):
            if rnd >= per_model[i]:
                continue
            version = f"v0.0.{rnd + 1}"
            mark += 1
            marks[(i, rnd)] = mark
            when += 30
            created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(when))
            md5 = f"{rng.getrandbits(128):032x}.dir"
            meta = (
                tpl["meta.yaml"]
                .replace(TEMPLATE, name)
                .replace(f"version: {tpl['version']}", f"version: {version}")
                .replace(tpl["md5"], md5)
                .replace(tpl["created"], created)
            )
            stamp = f"{who} <{email}> {when} +0000"
            out.append(
                f"commit refs/heads/main\nmark :{mark}\n"
                f"author {stamp}\ncommitter {stamp}\n".encode()
            )
            data(f"Register {name} {version}")
            if first:
                out.append(f"from {head}\n".encode())
                first = False
            rel = f"models/{name}"
            for fname, text in (
                ("meta.yaml", meta),
                ("artifact.dvc", tpl["artifact.dvc"].replace(tpl["md5"], md5)),
            ):
                out.append(f"M 100644 inline {rel}/{fname}\n".encode())
                data(text)
            if rnd == 0:
                out.append(f"M 100644 inline {rel}/.gitignore\n".encode())
                data(tpl[".gitignore"])
                dvc_entries.append(entry.replace(TEMPLATE, name))
                out.append(b"M 100644 inline dvc.yaml\n")
                data(dvc_yaml_head + "".join(dvc_entries))
            out.append(b"\n")
            out.append(f"tag {name}@{version}\nfrom :{mark}\ntagger {stamp}\n".encode())
            data(f"Registering artifact {name} version {version}\n")
    # Stage tags: every model's second-newest version goes to prod (#1), every tenth model's
    # newest to staging (#2). GTO's counter N counts per artifact.
    for i, name in enumerate(names):
        when += 1
        stamp = f"{who} <{email}> {when} +0000"
        last = per_model[i] - 1
        target = max(0, last - 1)
        version = f"v0.0.{target + 1}"
        out.append(f"tag {name}#prod#1\nfrom :{marks[(i, target)]}\ntagger {stamp}\n".encode())
        data(f"Assigning stage prod to artifact {name} version {version}\n")
        if i % 10 == 0:
            when += 1
            stamp = f"{who} <{email}> {when} +0000"
            out.append(f"tag {name}#staging#2\nfrom :{marks[(i, last)]}\ntagger {stamp}\n".encode())
            data(f"Assigning stage staging to artifact {name} version v0.0.{last + 1}\n")
    out.append(b"done\n")
    return b"".join(out)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    code = str(Path(jupyter_modelhub.__file__).resolve().parents[1])
    env["PYTHONPATH"] = code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def fresh_process_ls(hub: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(hub)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_time(fn, n: int = 10) -> tuple[float, float]:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts)


def measure(hub_path: Path, label: str) -> list[tuple[str, float, str, bool]]:
    """Rows: (what, seconds, note, has floor)."""
    shutil.rmtree(hub_path / ".modelhub" / "cache", ignore_errors=True)
    cold = fresh_process_ls(hub_path)
    warm_proc = fresh_process_ls(hub_path)
    hub = Hub(hub_path)
    hub.ls()
    ls_med, ls_min = median_time(hub.ls)
    show_med, show_min = median_time(lambda: hub.show("model-0500@latest"))
    ver_med, ver_min = median_time(lambda: hub.versions("model-0500"))
    n_versions = len(hub.versions("model-0500"))
    check = (
        f"{cold['models']} models, {cold['versions']} versions, "
        f"{cold['prod']} prod, {cold['staging']} staging"
    )
    return [
        (
            f"{label}: ls cold (fresh process, caches empty)",
            cold["ls_s"],
            f"+ import {cold['import_s']:.2f} s; {check}",
            True,
        ),
        (
            f"{label}: ls fresh process, caches present",
            warm_proc["ls_s"],
            f"+ import {warm_proc['import_s']:.2f} s",
            True,
        ),
        (f"{label}: ls warm (median of 10)", ls_med, f"min {ls_min:.3f} s", True),
        (
            f"{label}: show('model-0500@latest') (median of 10)",
            show_med,
            f"min {show_min:.3f} s",
            False,
        ),
        (
            f"{label}: versions('model-0500') (median of 10)",
            ver_med,
            f"min {ver_min:.3f} s; {n_versions} versions",
            False,
        ),
    ]


def profile(hub_path: Path, top: int = 15) -> None:
    """cProfile of an in-process cold ls (caches empty), a warm ls and a warm show."""
    import cProfile
    import io
    import pstats

    shutil.rmtree(hub_path / ".modelhub" / "cache", ignore_errors=True)
    hub = Hub(hub_path)
    for what, fn in (
        ("ls, caches empty (in-process)", hub.ls),
        ("ls, warm", hub.ls),
        ("show('model-0500@latest'), warm", lambda: hub.show("model-0500@latest")),
    ):
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        fn()
        prof.disable()
        took = time.perf_counter() - t
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        body = "\n".join(
            line
            for line in out.getvalue().splitlines()
            if line.strip() and "Ordered by" not in line
        )
        print(f"\n--- profile: {what}: {took:.3f} s under cProfile ---\n{body}")


def time_gto(hub_path: Path, timeout: float = GTO_TIMEOUT) -> tuple[float | None, str]:
    exe = Path(sys.executable).with_name("gto")
    gto = str(exe) if exe.exists() else shutil.which("gto")
    if not gto:
        return None, "gto not installed (pip install gto)"
    t = time.perf_counter()
    try:
        proc = subprocess.run(
            [gto, "show", "--json"], cwd=hub_path, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, f"did not finish within {timeout:.0f} s (killed)"
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        return seconds, f"failed: {proc.stderr.strip()[-300:]}"
    try:
        shown = json.loads(proc.stdout)
        rows = shown if isinstance(shown, list) else list(shown.values())
        prod = sum(1 for r in rows if isinstance(r, dict) and (r.get("stage") or {}).get("prod"))
        return seconds, f"{len(rows)} artifacts, {prod} with prod"
    except ValueError:
        return seconds, "output is not JSON"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10000)
    parser.add_argument("--no-gto", action="store_true", help="skip `gto show`")
    parser.add_argument(
        "--gto-timeout",
        type=float,
        default=GTO_TIMEOUT,
        help="cap on `gto show` (seconds, at most 600)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile of ls (cold and warm) and show"
    )
    args = parser.parse_args()
    n_models = max(1, min(args.models, 10_000))  # bounded
    n_versions = max(n_models, min(args.versions, 100_000))
    if n_models <= 500:
        parser.error("--models must be above 500 (the benchmark reads model-0500)")
    print(
        f"bench_ls: {n_models} models, {n_versions} versions, python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}\ncode: {Path(jupyter_modelhub.__file__).parent}"
    )

    tmp = Path(tempfile.mkdtemp(prefix="modelhub-bench-ls-"))
    try:
        t = time.perf_counter()
        tpl = template_files(tmp)
        hub_path = Hub.init(tmp / "hub").path
        head = git(hub_path, "rev-parse", "HEAD").strip()
        base = int(time.time()) - 40 * n_versions
        stream = build_stream(tpl, n_models, n_versions, head, base)
        t_stream = time.perf_counter() - t
        t = time.perf_counter()
        git(hub_path, "fast-import", "--quiet", input=stream)
        git(hub_path, "reset", "-q", "--hard", "main")
        t_import = time.perf_counter() - t
        loose = sum(1 for _ in os.scandir(hub_path / ".git" / "refs" / "tags"))
        n_tags = len(git(hub_path, "tag", "-l").splitlines())
        print(
            f"built the hub in {t_stream + t_import:.1f} s (stream {t_stream:.1f} s, "
            f"fast-import + checkout {t_import:.1f} s): {n_tags} annotated tags, "
            f"{loose} loose tag refs, {len(stream) / 1e6:.1f} MB stream"
        )

        rows = measure(hub_path, "loose refs")
        git(hub_path, "pack-refs", "--all")
        loose = sum(1 for _ in os.scandir(hub_path / ".git" / "refs" / "tags"))
        rows += measure(hub_path, "packed refs")
        gto_timeout = max(1.0, min(args.gto_timeout, 600.0))
        gto_s, gto_note = (None, "skipped") if args.no_gto else time_gto(hub_path, gto_timeout)

        print()
        print(
            f"ls over {n_models} models / {n_versions} versions "
            f"(floor: ls < {FLOOR_LS} s; page cache warm):"
        )
        print(f"  {'what':<58} {'seconds':>8}  {'floor':<7} notes")
        for what, seconds, note, floored in rows:
            verdict = ("PASS" if seconds < FLOOR_LS else "FAIL") if floored else "-"
            print(f"  {what:<58} {seconds:8.3f}  {verdict:<7} {note}")
        shown = f"{gto_s:8.2f}" if gto_s is not None else "     n/a"
        print(f"  {'gto show --json (CLI, packed refs, once)':<58} {shown}  {'-':<7} {gto_note}")
        print(
            f"\n  (after pack-refs: {loose} loose tag refs left; the registry runs "
            "`git pack-refs --all` itself once 256 tags are loose)"
        )
        print(f"  (load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        if args.profile:
            profile(hub_path)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
