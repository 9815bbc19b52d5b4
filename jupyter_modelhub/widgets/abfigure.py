"""Outcomes as plotly figures: data in, figure out, nothing else.

The A/B report: left, each variant's estimate (rate or mean) with its confidence interval as
error bars; right, each challenger's always-valid p-value at each look the reader has seen,
with the significance level as a line: once a curve falls below it, the experiment can stop.
Quality over time: the outcome rate or mean per window and variant, with its interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..experiments.analysis import ExperimentAnalysis
from ..experiments.quality import QualityTimeline

#: challenger -> (looks, always-valid p) in the order they were seen
PHistory = Mapping[str, Sequence[tuple[int, float]]]


def p_value_points(analysis: ExperimentAnalysis) -> dict[str, tuple[int, float]]:
    """Each challenger's (looks so far, always-valid p-value) in ``analysis``."""
    return {name: (seq.looks, seq.p_value) for name, seq in analysis.sequential.items()}


def ab_report_figure(analysis: ExperimentAnalysis, history: PHistory | None = None) -> go.Figure:
    """The figure of an A/B report.

    Args:
        analysis: what ``Hub.ab_report`` returned.
        history: the always-valid p-values seen at earlier reads, per challenger (a widget
            that refreshes keeps them); without it, the current value alone is drawn.
    """
    report = analysis.report
    level = f"{report.confidence_level:.0%}"
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            f"{report.metric_label} by variant ({level} CI)",
            "always-valid p-value over looks",
        ),
    )
    names, estimates, above, below = [], [], [], []
    for variant in report.variants:
        if variant.estimate is None:
            continue
        names.append(variant.name)
        estimates.append(variant.estimate)
        ci = variant.ci
        above.append(ci.high - variant.estimate if ci is not None else 0.0)
        below.append(variant.estimate - ci.low if ci is not None else 0.0)
    figure.add_trace(
        go.Scatter(
            x=names,
            y=estimates,
            mode="markers",
            name=report.metric_label,
            marker={"size": 10},
            error_y={"type": "data", "symmetric": False, "array": above, "arrayminus": below},
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    points = history if history is not None else {}
    current = p_value_points(analysis)
    for challenger in sorted(current):
        seen = list(points.get(challenger, ()))
        if not seen or seen[-1] != current[challenger]:
            seen.append(current[challenger])
        figure.add_trace(
            go.Scatter(
                x=[looks for looks, _ in seen],
                y=[p for _, p in seen],
                mode="lines+markers",
                name=challenger,
            ),
            row=1,
            col=2,
        )
    figure.add_hline(
        y=report.alpha,
        line_dash="dash",
        annotation_text=f"alpha {report.alpha:g}",
        row=1,
        col=2,
    )
    figure.update_yaxes(tickformat=".0%" if report.metric == "rate" else None, row=1, col=1)
    figure.update_yaxes(range=[0, 1.05], row=1, col=2)
    figure.update_xaxes(title_text="looks", row=1, col=2)
    figure.update_layout(
        title=f"A/B test {analysis.experiment}", height=380, margin={"t": 70, "b": 40}
    )
    return figure


def quality_figure(timeline: QualityTimeline) -> go.Figure:
    """The model's quality over time: the outcome rate (or mean) per window, one line per
    variant, its 95% interval as error bars."""
    what = "rate" if timeline.metric == "rate" else "mean"
    figure = go.Figure()
    for variant in dict.fromkeys(p.variant for p in timeline.points):
        points = [p for p in timeline.points if p.variant == variant]
        figure.add_trace(
            go.Scatter(
                x=[p.start.isoformat() for p in points],
                y=[p.mean for p in points],
                name=variant,
                mode="lines+markers",
                customdata=[p.n for p in points],
                hovertemplate=f"{what} %{{y:.4g}}, %{{customdata}} outcomes<extra>{variant}</extra>",
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [None if p.high is None else p.high - p.mean for p in points],
                    "arrayminus": [None if p.low is None else p.mean - p.low for p in points],
                },
            )
        )
    figure.update_layout(
        title=f"Quality over time: outcome {what} per {timeline.step_seconds:g} s window (95% CI)",
        yaxis={"tickformat": ".0%"} if what == "rate" else {},
        legend={"orientation": "h"},
        height=320,
    )
    return figure
