"""Figures and the HTML export, checked without a browser: structure, traces, titles, size."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring import (
    DriftOptions,
    build_profile,
    compute_drift,
    drift_over_time,
)
from jupyter_modelhub.monitoring.figures import (
    drift_over_time_figure,
    drift_table_figure,
    feature_table,
    histogram_figure,
    monitor_figure,
)
from jupyter_modelhub.monitoring.html import drift_report_html
from jupyter_modelhub.monitoring.scrape import HealthPoint

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_drift.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_drift", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(0)
    reference = {
        "amount": rng.lognormal(size=3000),
        "age": rng.integers(18, 90, 3000).astype(float),
        "items": rng.integers(0, 4, 3000).astype(float),  # discrete: one bin per value
        "city": rng.choice(["paris", "oslo", "rome"], 3000),
    }
    current = {
        "amount": rng.lognormal(0.5, size=2000),
        "age": rng.integers(18, 90, 2000).astype(float),
        "items": rng.integers(0, 5, 2000).astype(float),
        "city": rng.choice(["paris", "oslo", "rome", "lima"], 2000),
    }
    return build_profile(reference), current


def test_feature_table_follows_the_reports_order(mixed) -> None:
    profile, current = mixed
    report = compute_drift(profile, current)
    rows = feature_table(report)
    assert [r["feature"] for r in rows] == [f.column for f in report.features]
    assert [r["drifted"] for r in rows] == sorted((r["drifted"] for r in rows), reverse=True)
    figure = drift_table_figure(report)
    [table] = figure.data
    assert table.type == "table" and table.header.values[0] == "feature"
    assert list(table.cells.values[0]) == [r["feature"] for r in rows]
    assert figure.layout.title.text.startswith(f"Drift: {report.n_drifted} of 4 features")


def test_histogram_of_a_numerical_feature_from_its_bins(mixed) -> None:
    profile, current = mixed
    amount = compute_drift(profile, current).feature("amount")
    figure = histogram_figure(amount)
    reference, cur = figure.data
    assert (reference.name, cur.name) == ("reference", "current")
    assert len(reference.x) == len(amount.histogram.reference)  # type: ignore[union-attr]
    assert sum(reference.y) == pytest.approx(1.0) and sum(cur.y) == pytest.approx(1.0)
    assert reference.x[0].startswith("< ") and reference.x[-1].startswith(">= ")
    assert figure.layout.title.text.startswith("amount: reference vs current (wasserstein")
    counts = histogram_figure(amount, share=False).data[1]
    assert sum(counts.y) == 2000  # counts, from aggregates


def test_histogram_of_discrete_and_categorical_features(mixed) -> None:
    profile, current = mixed
    report = compute_drift(profile, current)
    items = histogram_figure(report.feature("items")).data[0]
    assert list(items.x)[:4] == ["0", "1", "2", "3"] and items.x[-1] == "> 3"  # 4 is new
    city = histogram_figure(report.feature("city")).data
    assert list(city[0].x) == ["oslo", "paris", "rome", "lima"]
    assert city[0].y[-1] == 0 and city[1].y[-1] > 0
    bare = compute_drift(profile, current, DriftOptions(histograms=False)).feature("city")
    with pytest.raises(InvalidArgument, match="no histogram"):
        histogram_figure(bare)


def test_drift_over_time_figure(mixed) -> None:
    profile, current = mixed
    stamps = np.datetime64("2026-11-22T00:00") + np.arange(2000) * np.timedelta64(3, "s")
    timeline, _ = drift_over_time(profile, current, stamps, window="30m")
    figure = drift_over_time_figure(timeline, top=2)
    scores = [t for t in figure.data if t.type == "scatter"]
    drifted = dict(zip(timeline.columns, timeline.drifted.sum(axis=1), strict=True))
    shown = [t.name.split(" ")[0] for t in scores]
    assert len(shown) == 2 and sorted(drifted.values())[-2:] == sorted(drifted[c] for c in shown)
    assert len(scores[0].x) == timeline.starts.size
    [share] = [t for t in figure.data if t.type == "bar"]
    assert share.name == "drift share" and list(share.customdata) == list(timeline.n_rows)
    assert figure.layout.title.text == "Drift over time"
    chosen = drift_over_time_figure(timeline, columns=["city"])
    assert [t.name for t in chosen.data if t.type == "scatter"] == [
        "city (chisquare)"
    ]  # windows of 600 rows
    with pytest.raises(InvalidArgument, match="no feature 'nope'"):
        drift_over_time_figure(timeline, columns=["nope"])


def test_monitor_figure_has_a_trace_per_signal_and_variant() -> None:
    points = [
        HealthPoint("fraud", variant, t, t + 10, 100, 10.0, 0.01, 0.004, 0.02, 3.0)
        for t in (0.0, 10.0, 20.0)
        for variant in ("blue", "green")
    ]
    figure = monitor_figure(points)
    signals = sorted((t.meta["signal"], t.meta["variant"]) for t in figure.data)
    assert signals == sorted(
        (s, v)
        for s in ("requests_per_second", "p50_latency", "p99_latency", "error_rate", "batch_size")
        for v in ("blue", "green")
    )
    assert all(len(t.x) == 3 for t in figure.data)
    titles = [a.text for a in figure.layout.annotations]
    assert titles == [
        "Requests per second",
        "Latency p50 / p99 (s)",
        "Error rate (5xx)",
        "Batch size (rows per model call)",
    ]


def test_html_export_of_the_benchmark_data_stays_under_a_megabyte(tmp_path: Path) -> None:
    bench = _bench()
    reference, current, _ = bench.make_data(20_000)  # 55 features, the benchmark's shifts
    profile = build_profile(reference)
    report = compute_drift(profile, current)
    stamps = np.datetime64("2026-11-22T00:00") + np.arange(20_000) * np.timedelta64(1, "s")
    timeline, _ = drift_over_time(profile, current, stamps, window="1h")
    page = drift_report_html(report, timeline=timeline, subtitle="fraud-svc, last 6h")
    size = len(page.encode())
    assert size < 1_000_000, size
    assert page.count('class="figure"') == 56  # a histogram per feature and the timeline
    assert page.count("cdn.plot.ly/plotly-") == 1 and "<script>Plotly" not in page
    assert page.count('<tr class="drifted">') == report.n_drifted
    data = re.search(r"const F = \[(.*)\];", page, re.S)
    assert data is not None
    figures = json.loads(f"[{data.group(1)}]")  # the embedded figures are valid JSON
    assert len(figures) == 56 and figures[1]["data"][0]["name"] == "reference"
    (tmp_path / "report.html").write_text(page)


def test_html_inline_plotly_is_included_once(mixed) -> None:
    profile, current = mixed
    page = drift_report_html(compute_drift(profile, current), plotlyjs="inline", max_histograms=1)
    assert "<script src=" not in page and len(page) > 3_000_000  # plotly.js is in the page
    assert page.split("const F = ")[1].count("Plotly.newPlot(") == 1
    assert page.count('class="figure"') == 1
    with pytest.raises(InvalidArgument):
        drift_report_html(compute_drift(profile, current), plotlyjs="nope")  # type: ignore[arg-type]


def test_html_escapes_names() -> None:
    profile = build_profile({"<b>x</b>": np.arange(50.0)})
    page = drift_report_html(compute_drift(profile, {"<b>x</b>": np.arange(50.0)}), title="a<b")
    assert "<b>x</b>" not in page.split("<script>")[0] and "&lt;b&gt;x&lt;/b&gt;" in page
