"""Benchmark: the drift engine's default report, side by side with scipy and Evidently 0.7.

Data (``make_data``, fixed seed): a reference and a current table of 200,000 rows each, 50
numerical + 5 categorical features of assorted distributions. A shift is injected in 10 known
features (8 numerical, 2 categorical) of mixed size (0.15 to 1 standard deviation, scale and
shape changes, category mix changes, a new category); 2 more numerical features get a
negligible shift (0.02 standard deviation) that a large-sample KS test calls significant but
that must not be flagged. The default report must flag exactly the 10.

Timed in one run (medians of ``--repeat``, after one warm-up):

  ours, full          ``compute_drift(build_profile(ref_df), cur_df)``: profile + report
  ours, profile       ``compute_drift(profile, cur_df)`` with the profile built beforehand
  ours, KS everywhere the same with ``DriftOptions(test="ks")`` (KS on all 50 numerical columns)
  scipy loop          ``scipy.stats.ks_2samp(ref[c], cur[c])`` for each numerical column
  Evidently 0.7       ``Report([DataDriftPreset()]).run(cur_df, ref_df)`` in its own venv
                      (``/work/evidently-venv`` or ``$EVIDENTLY_VENV``), as a subprocess reading
                      the same data from Parquet; its HTML report's size is recorded too.

Floors: ours (full) at least 20x faster than Evidently, faster than the scipy loop and under
1 s; with ``--large``, 1,000,000 rows x 100 features (90 numerical, 10 categorical) under 10 s.

Run from the repository root:  python benchmarks/bench_drift.py [--repeat 3] [--large]
Prints PASS/FAIL per floor; exits 0 unless ``--strict`` is given and a floor failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# Measure this checkout's code, even when some (other) jupyter_modelhub is installed.
if (REPO_ROOT / "jupyter_modelhub" / "__init__.py").exists():
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from jupyter_modelhub.monitoring import DriftOptions, build_profile, compute_drift  # noqa: E402

SEED = 20261122
DEFAULT_EVIDENTLY_VENV = Path(os.environ.get("EVIDENTLY_VENV", "/work/evidently-venv"))
FLOOR_VS_EVIDENTLY = 20.0  # ours at least this many times faster
FLOOR_SECONDS = 1.0  # ours (full) under this, 200,000 rows
FLOOR_LARGE_SECONDS = 10.0  # ours (full), 1,000,000 rows x 100 features
EVIDENTLY_SETUP = f"""\
  python3 -m venv {DEFAULT_EVIDENTLY_VENV}
  {DEFAULT_EVIDENTLY_VENV}/bin/pip install 'evidently>=0.7,<0.8' 'pandas<3'
(Evidently 0.7.23 fails to import with pandas 3; EVIDENTLY_VENV points elsewhere)"""

# The injected shifts: column -> what changes (the default report must flag exactly these).
DRIFTED = {
    "num_00": "normal, mean +0.15 sd",
    "num_06": "normal, mean +0.5 sd",
    "num_07": "lognormal, sigma 0.5 -> 0.7",
    "num_14": "uniform(0, 10) -> uniform(0, 12)",
    "num_15": "exponential, scale 2 -> 2.5",
    "num_22": "poisson, lambda 5 -> 6",
    "num_29": "student t(5), scale x1.3",
    "num_30": "normal, mean +1 sd",
    "cat_1": "5 categories, uniform -> skewed mix",
    "cat_3": "12 categories, a new category takes 15%",
}
NEGLIGIBLE = {"num_12": "normal, mean +0.02 sd", "num_36": "normal, mean +0.02 sd"}


def make_data(
    n_rows: int = 200_000,
    *,
    n_numerical: int = 50,
    n_categorical: int = 5,
    seed: int = SEED,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Reference and current columns (dicts of arrays) and the names of the drifted features.

    Numerical feature ``i`` follows family ``i % 6``: normal, lognormal, uniform, exponential,
    poisson (integers), student t. Categorical feature ``j`` has 3, 5, 8, 12 or 2 string labels.
    The shifts of ``DRIFTED`` and ``NEGLIGIBLE`` apply to the current table only.
    """
    rng = np.random.default_rng(seed)
    reference: dict[str, np.ndarray] = {}
    current: dict[str, np.ndarray] = {}
    for i in range(n_numerical):
        name = f"num_{i:02d}"
        family = i % 6
        for table in (reference, current):
            shifted = table is current
            if family == 0:
                scale = 1.0 + i % 3
                shift = {"num_00": 0.15, "num_06": 0.5, "num_12": 0.02, "num_30": 1.0}.get(name, 0)
                shift += 0.02 if name == "num_36" else 0.0
                table[name] = rng.normal(i + (shift * scale if shifted else 0.0), scale, n_rows)
            elif family == 1:
                sigma = 0.7 if shifted and name == "num_07" else 0.5
                table[name] = rng.lognormal(0.0, sigma, n_rows)
            elif family == 2:
                high = 12.0 if shifted and name == "num_14" else 10.0
                table[name] = rng.uniform(0.0, high, n_rows)
            elif family == 3:
                scale = 2.5 if shifted and name == "num_15" else 2.0
                table[name] = rng.exponential(scale, n_rows)
            elif family == 4:
                lam = 3 + i % 4 + (1 if shifted and name == "num_22" else 0)
                table[name] = rng.poisson(lam, n_rows).astype(np.int64)
            else:
                scale = 1.3 if shifted and name == "num_29" else 1.0
                table[name] = rng.standard_t(5, n_rows) * scale
    sizes = (3, 5, 8, 12, 2)
    for j in range(n_categorical):
        name = f"cat_{j}"
        k = sizes[j % len(sizes)]
        labels = np.array([f"{name}_v{v}" for v in range(k)] + [f"{name}_new"], dtype=object)
        base = np.linspace(2.0, 1.0, k)
        base = base / base.sum()
        for table in (reference, current):
            p = np.append(base, 0.0)
            if table is current and name == "cat_1":
                p = np.append(np.array([0.05, 0.1, 0.15, 0.3, 0.4]), 0.0)
            elif table is current and name == "cat_3":
                p = np.append(base * 0.85, 0.15)
            table[name] = labels[rng.choice(k + 1, size=n_rows, p=p)]
    drifted = [c for c in DRIFTED if c in reference]
    return reference, current, drifted


def frame(columns: dict[str, np.ndarray]) -> Any:
    import pandas as pd

    return pd.DataFrame(columns)


def timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """One warm-up call, then ``repeat`` timed calls: (median s, min s, last result)."""
    result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), result


def scipy_loop(ref: Any, cur: Any, numerical: list[str]) -> list[float]:
    from scipy import stats

    return [float(stats.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()).pvalue) for c in numerical]


EVIDENTLY_CHILD = textwrap.dedent(
    """
    # Runs in the Evidently venv: time the default DataDriftPreset report, save its HTML.
    import json, os, sys, time
    import pandas as pd
    t0 = time.perf_counter()
    from evidently import Report
    from evidently.presets import DataDriftPreset
    import evidently
    import_s = time.perf_counter() - t0
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    t = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    run_s = time.perf_counter() - t
    t = time.perf_counter()
    snapshot.save_html(sys.argv[3])
    html_s = time.perf_counter() - t
    drifted, tests = [], {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            method, value = config.get("method", ""), metric["value"]
            threshold = config.get("threshold")
            p_value = "p_value" in method or "test" in method.lower()
            hit = value < threshold if p_value else value >= threshold
            tests[method] = tests.get(method, 0) + 1
            if hit:
                drifted.append(config["column"])
    print(json.dumps({"version": evidently.__version__, "import_s": import_s, "run_s": run_s,
                      "html_s": html_s, "html_bytes": os.path.getsize(sys.argv[3]),
                      "drifted": sorted(drifted), "tests": tests}))
    """
)


def run_evidently(python: Path, ref: Any, cur: Any, tmp: Path) -> dict[str, Any]:
    ref_path, cur_path = tmp / "reference.parquet", tmp / "current.parquet"
    ref.to_parquet(ref_path)
    cur.to_parquet(cur_path)
    script = tmp / "evidently_child.py"
    script.write_text(EVIDENTLY_CHILD)
    env = {**os.environ, "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), str(script), str(ref_path), str(cur_path), str(tmp / "evidently.html")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def html_size_of_ours(report: Any) -> int:
    """Size of the report's JSON (aggregates only): what a dashboard export has to carry."""
    return len(json.dumps(report.to_dict()).encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of ours and scipy")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--evidently-python",
        type=Path,
        default=DEFAULT_EVIDENTLY_VENV / "bin" / "python",
        help="python of a venv with Evidently 0.7 (default: $EVIDENTLY_VENV/bin/python)",
    )
    parser.add_argument("--no-evidently", action="store_true", help="skip Evidently")
    parser.add_argument(
        "--large", action="store_true", help="also 1,000,000 rows x 100 features (ours only)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a floor fails")
    args = parser.parse_args()
    repeat = max(1, min(args.repeat, 20))
    failed: list[str] = []

    print(
        f"bench_drift: {args.rows} rows x (50 numerical + 5 categorical), seed {args.seed}, "
        f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    ref_cols, cur_cols, expected = make_data(args.rows, seed=args.seed)
    ref, cur = frame(ref_cols), frame(cur_cols)
    numerical = [c for c in ref.columns if c.startswith("num_")]

    full_s, full_min, report = timed(lambda: compute_drift(build_profile(ref), cur), repeat)
    build_s, _, profile = timed(lambda: build_profile(ref), repeat)
    prof_s, prof_min, _ = timed(lambda: compute_drift(profile, cur), repeat)
    ks_s, ks_min, ks_report = timed(
        lambda: compute_drift(profile, cur, DriftOptions(test="ks")), repeat
    )
    scipy_s, scipy_min, scipy_p = timed(lambda: scipy_loop(ref, cur, numerical), repeat)

    evidently = None
    if not args.no_evidently:
        if args.evidently_python.exists():
            tmp = Path(tempfile.mkdtemp(prefix="modelhub-bench-drift-"))
            try:
                print("running Evidently (a subprocess, ~1 min) ...", flush=True)
                evidently = run_evidently(args.evidently_python, ref, cur, tmp)
            except Exception as exc:  # report and go on: the rest of the figures still count
                print(f"\nNOTE: Evidently failed, skipped: {exc}\n")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(
                f"\nEvidently SKIPPED: no venv at {args.evidently_python}. Set it up with:\n"
                f"{EVIDENTLY_SETUP}\n"
            )

    print()
    print(f"Default drift report, {args.rows} rows each side (median / min of {repeat}):")
    print(f"  {'method':<58} {'median s':>9} {'min s':>8}")
    rows = [
        ("ours: build_profile + compute_drift (full default report)", full_s, full_min),
        ("ours: compute_drift with a prebuilt profile", prof_s, prof_min),
        ("ours: build_profile alone", build_s, build_s),
        ("ours: prebuilt profile, KS on every numerical column", ks_s, ks_min),
        (f"scipy: ks_2samp loop over {len(numerical)} numerical columns", scipy_s, scipy_min),
    ]
    if evidently:
        rows.append(
            (f"Evidently {evidently['version']}: DataDriftPreset run", evidently["run_s"], None)
        )
        rows.append(("Evidently: save_html", evidently["html_s"], None))
    for label, med, low in rows:
        low_text = f"{low:8.3f}" if low is not None else f"{'-':>8}"
        print(f"  {label:<58} {med:9.3f} {low_text}")

    print()
    flagged = sorted(report.drifted_columns)
    ok = flagged == sorted(expected)
    print(f"  ours flags {len(flagged)} features: {', '.join(flagged)}")
    print(f"  expected   {len(expected)} features: {', '.join(sorted(expected))}  {mark(ok)}")
    if not ok:
        failed.append("flags")
    ks_flagged = sorted(ks_report.drifted_columns)
    print(
        f"  ours with KS everywhere flags {len(ks_flagged)} "
        f"(BH + minimum effect; negligible shifts {', '.join(NEGLIGIBLE)} "
        f"{'not flagged' if not set(NEGLIGIBLE) & set(ks_flagged) else 'FLAGGED'})"
    )
    raw = [c for c, p in zip(numerical, scipy_p, strict=True) if p < 0.05]
    print(
        f"  plain scipy KS at p < 0.05 flags {len(raw)} numerical columns "
        f"(of {sum(c.startswith('num_') for c in expected)} shifted): {', '.join(raw)}"
    )
    if evidently:
        ev_flagged = sorted(evidently["drifted"])
        print(
            f"  Evidently flags {len(ev_flagged)}: {', '.join(ev_flagged)} "
            f"(tests: {evidently['tests']})"
        )
        print(
            f"  Evidently HTML report: {evidently['html_bytes'] / 1e6:.1f} MB "
            f"(ours, report.to_dict() as JSON with histograms: "
            f"{html_size_of_ours(report) / 1e3:.0f} kB)"
        )

    print()
    print("  floor                                      value      floor     result")
    ok = full_s < FLOOR_SECONDS
    print(
        f"  ours full report, seconds              {full_s:9.3f}   < {FLOOR_SECONDS:<7} {mark(ok)}"
    )
    if not ok:
        failed.append("seconds")
    ok = full_s < scipy_s
    print(
        f"  scipy loop / ours full                 {scipy_s / full_s:9.1f}   > 1       {mark(ok)}"
    )
    if not ok:
        failed.append("scipy")
    if evidently:
        speedup = evidently["run_s"] / full_s
        ok = speedup >= FLOOR_VS_EVIDENTLY
        print(
            f"  Evidently / ours full                  {speedup:9.1f}   >= {FLOOR_VS_EVIDENTLY:<6} "
            f"{mark(ok)}"
        )
        if not ok:
            failed.append("evidently")
    else:
        print("  Evidently / ours full                  SKIPPED (no Evidently venv)")

    if args.large:
        del ref, cur, ref_cols, cur_cols
        print(
            "\nmaking 1,000,000 rows x 100 features (90 numerical, 10 categorical) ...", flush=True
        )
        ref_cols, cur_cols, expected = make_data(
            1_000_000, n_numerical=90, n_categorical=10, seed=args.seed
        )
        ref, cur = frame(ref_cols), frame(cur_cols)
        del ref_cols, cur_cols
        large_full, _, large_report = timed(
            lambda: compute_drift(build_profile(ref), cur), max(1, repeat // 2)
        )
        large_build, _, large_profile = timed(lambda: build_profile(ref), 1)
        large_prof, _, _ = timed(lambda: compute_drift(large_profile, cur), max(1, repeat // 2))
        flagged = sorted(large_report.drifted_columns)
        print(f"  ours: build_profile + compute_drift        {large_full:8.3f} s")
        print(f"  ours: build_profile alone                  {large_build:8.3f} s")
        print(f"  ours: compute_drift with a prebuilt profile {large_prof:7.3f} s")
        print(
            f"  flags {len(flagged)} (expected {len(expected)}): "
            f"{mark(flagged == sorted(expected))}"
        )
        ok = large_full < FLOOR_LARGE_SECONDS
        print(
            f"  1,000,000 x 100 full report, seconds   {large_full:9.3f}   < {FLOOR_LARGE_SECONDS:<7} "
            f"{mark(ok)}"
        )
        if not ok:
            failed.append("large")

    print(
        f"\n(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        "other work on the machine shows up as spread between median and min)"
    )
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
