"""Drift and health as plotly figures: data in, ``go.Figure`` out (no widget, no browser).

The dashboards (ipywidgets + ``FigureWidget``), the HTML export and later the sidebar all build
their figures here, so each figure is tested once without a browser. Histograms are drawn from
the aggregates the engine keeps (:class:`~.records.Histogram`), never from raw rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring.records import DriftReport, DriftTimeline, FeatureDrift, Histogram
from jupyter_modelhub.monitoring.scrape import HealthPoint

REFERENCE_COLOR = "#7f7f7f"
CURRENT_COLOR = "#d62728"
TABLE_COLUMNS = ("feature", "type", "test", "score", "p-value", "effect size", "drifted")


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def feature_table(report: DriftReport) -> list[dict[str, Any]]:
    """One row per feature, in the report's order (drifted first, then by effect size)."""
    return [
        {
            "feature": f.column,
            "type": f.kind,
            "test": f.test,
            "score": f.statistic,
            "p_value": f.p_value_adjusted if f.p_value_adjusted is not None else f.p_value,
            "effect_size": f.effect_size,
            "effect_measure": f.effect_measure,
            "drifted": f.drifted,
            "note": f.note,
        }
        for f in report.features
    ]


def drift_table_figure(report: DriftReport, *, title: str | None = None) -> go.Figure:
    """The feature table (sorted by drift) as a plotly table; drifted rows are highlighted."""
    rows = feature_table(report)
    fill = ["#fde0dd" if r["drifted"] else "white" for r in rows]
    cells = [
        [r["feature"] for r in rows],
        [r["type"] for r in rows],
        [r["test"] for r in rows],
        [_number(r["score"]) for r in rows],
        [_number(r["p_value"], 3) for r in rows],
        [_number(r["effect_size"], 3) for r in rows],
        ["yes" if r["drifted"] else "no" for r in rows],
    ]
    figure = go.Figure(
        go.Table(
            header={"values": list(TABLE_COLUMNS), "align": "left"},
            cells={"values": cells, "align": "left", "fill_color": [fill] * len(cells)},
        )
    )
    heading = title or (
        f"Drift: {report.n_drifted} of {report.n_features} features "
        f"({report.drift_share:.0%}{', dataset drift' if report.dataset_drift else ''})"
    )
    figure.update_layout(title=heading, margin={"t": 50, "l": 10, "r": 10, "b": 10})
    return figure


def _bin_labels(histogram: Histogram) -> list[str]:
    if histogram.kind == "categorical":
        return list(histogram.labels)
    # 3 significant digits: short enough for 20 labels side by side
    edges = [_number(e, 3) for e in histogram.edges]
    if not edges:
        return ["all"]
    if histogram.discrete:  # bins [v, next float after v) hold exactly v; others are gaps
        labels = [f"< {edges[0]}"]
        for i in range(len(edges) - 1):
            labels.append(edges[i] if i % 2 == 0 else f"({edges[i - 1]}, {edges[i + 1]})")
        labels.append(f"> {edges[-2]}" if len(edges) > 1 else f">= {edges[-1]}")
        return labels
    return (
        [f"< {edges[0]}"]
        + [f"[{a}, {b})" for a, b in itertools.pairwise(edges)]
        + [f">= {edges[-1]}"]
    )


def histogram_figure(
    feature: FeatureDrift | Histogram, *, column: str | None = None, share: bool = True
) -> go.Figure:
    """Reference vs current distribution of one feature, from its bin counts.

    ``share``: plot each side's share of its rows (comparable across sample sizes), else counts.
    Bins empty on both sides are left out.

    Raises:
        InvalidArgument: the feature carries no histogram (computed with ``histograms=False``).
    """
    histogram = feature.histogram if isinstance(feature, FeatureDrift) else feature
    name = column or (feature.column if isinstance(feature, FeatureDrift) else "feature")
    if histogram is None:
        raise InvalidArgument(
            f"The drift result of {name!r} has no histogram.",
            hint="Compute the report with DriftOptions(histograms=True) (the default).",
        )
    labels = _bin_labels(histogram)
    reference = np.asarray(histogram.reference, dtype=float)
    current = np.asarray(histogram.current, dtype=float)
    keep = (reference + current) > 0
    if share:
        reference = reference / max(reference.sum(), 1.0)
        current = current / max(current.sum(), 1.0)
    x = [label for label, k in zip(labels, keep, strict=True) if k]
    figure = go.Figure(
        [
            go.Bar(name="reference", x=x, y=reference[keep], marker_color=REFERENCE_COLOR),
            go.Bar(name="current", x=x, y=current[keep], marker_color=CURRENT_COLOR),
        ]
    )
    subtitle = ""
    if isinstance(feature, FeatureDrift):
        verdict = "drifted" if feature.drifted else "no drift"
        subtitle = f" ({feature.test} {_number(feature.statistic, 3)}, {verdict})"
    figure.update_layout(
        title=f"{name}: reference vs current{subtitle}",
        barmode="group",
        yaxis_title="share of rows" if share else "rows",
        xaxis_type="category",
        xaxis_tickangle=-45,
        legend={"orientation": "h"},
    )
    return figure


def _times(values: np.ndarray) -> list[Any]:
    if np.issubdtype(values.dtype, np.datetime64):
        return [str(v) for v in values.astype("datetime64[s]")]
    return [float(v) for v in values]


def drift_over_time_figure(
    timeline: DriftTimeline, *, columns: Sequence[str] | None = None, top: int = 8
) -> go.Figure:
    """Scores per window (one line per feature) above the dataset drift share per window.

    ``columns`` picks the features shown; by default the ``top`` that drifted in the most
    windows (in the timeline's column order on ties). Windows with too few rows are gaps.
    """
    if columns is None:  # scores of different tests do not compare: rank by windows drifted
        order = np.argsort(-timeline.drifted.sum(axis=1), kind="stable")[:top]
        chosen = [timeline.columns[i] for i in order]
    else:
        unknown = [c for c in columns if c not in timeline.columns]
        if unknown:
            raise InvalidArgument(
                f"The timeline has no feature {', '.join(map(repr, unknown))}.",
                hint=f"It has: {', '.join(timeline.columns)}.",
            )
        chosen = list(columns)
    x = _times(timeline.starts)
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.08,
        subplot_titles=("Drift score per feature", "Share of drifted features"),
    )
    for column in chosen:
        i = timeline.columns.index(column)
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[None if math.isnan(v) else float(v) for v in timeline.scores[i]],
                name=f"{column} ({timeline.tests[i]})",
                mode="lines+markers",
            ),
            row=1,
            col=1,
        )
    figure.add_trace(
        go.Bar(
            x=x,
            y=[None if math.isnan(v) else float(v) for v in timeline.drift_share],
            name="drift share",
            marker_color=CURRENT_COLOR,
            customdata=[int(n) for n in timeline.n_rows],
            hovertemplate="%{y:.0%} of features, %{customdata} rows<extra></extra>",
        ),
        row=2,
        col=1,
    )
    figure.update_yaxes(range=[0, 1], tickformat=".0%", row=2, col=1)
    figure.update_layout(title="Drift over time", legend={"orientation": "v"})
    return figure


MONITOR_PANELS = (
    ("requests_per_second", "Requests per second", None),
    ("latency", "Latency p50 / p99 (s)", None),
    ("error_rate", "Error rate (5xx)", ".1%"),
    ("batch_size", "Batch size (rows per model call)", None),
)


def monitor_figure(points: Sequence[HealthPoint], *, title: str = "Deployment health") -> go.Figure:
    """Requests/s, p50/p99 latency, error rate and batch size per variant over time, from the
    health points of consecutive scrapes (:func:`~.scrape.health_series`)."""
    figure = make_subplots(
        rows=2,
        cols=2,
        shared_xaxes=True,
        subplot_titles=[p[1] for p in MONITOR_PANELS],
        vertical_spacing=0.12,
    )
    groups: dict[tuple[str, str], list[HealthPoint]] = {}
    for point in sorted(points, key=lambda p: p.end):
        groups.setdefault((point.deployment, point.variant), []).append(point)
    for (deployment, variant), series in groups.items():
        label = f"{deployment} {variant}".strip() or "model"
        x = [dt.datetime.fromtimestamp(p.end, dt.timezone.utc) for p in series]
        lines = [
            (1, 1, "requests_per_second", label),
            (1, 2, "p50_latency", f"p50 {label}"),
            (1, 2, "p99_latency", f"p99 {label}"),
            (2, 1, "error_rate", label),
            (2, 2, "batch_size", label),
        ]
        for row, col, field, name in lines:
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=[getattr(p, field) for p in series],
                    name=name,
                    legendgroup=label,
                    mode="lines",
                    meta={"signal": field, "deployment": deployment, "variant": variant},
                    line={"dash": "dot"} if field == "p50_latency" else {},
                ),
                row=row,
                col=col,
            )
    figure.update_yaxes(tickformat=".1%", row=2, col=1)
    figure.update_layout(title=title)
    return figure
