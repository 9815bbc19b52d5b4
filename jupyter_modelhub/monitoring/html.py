"""A drift report as one self-contained HTML page, small enough to mail or attach to a ticket.

The page holds the summary, the feature table (plain HTML), a reference-vs-current histogram per
feature (drifted ones first) and, when given, drift over time. Figures are plotly JSON built by
:mod:`.figures` from aggregates only, with numbers rounded to 4 significant digits. plotly.js is
loaded from its CDN (``plotlyjs="cdn"``, the default: the page is then a few hundred kB for the
benchmark's 55 features) or included once (``"inline"``: about 4.6 MB more, for offline use).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any, Literal

import plotly
import plotly.io as pio

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring.figures import (
    drift_over_time_figure,
    feature_table,
    histogram_figure,
)
from jupyter_modelhub.monitoring.records import DriftReport, DriftTimeline

PlotlyJs = Literal["cdn", "inline"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
tr.drifted td { background: #fde0dd; }
.figure { width: 100%; max-width: 900px; height: 360px; }
.muted { color: #666; }
"""


def _round(value: Any) -> Any:
    """Floats to 4 significant digits, recursively (plotly JSON carries full precision)."""
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else None
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _figure_json(figure: Any) -> str:
    data = json.loads(pio.to_json(figure, validate=False, remove_uids=True))
    data.get("layout", {}).pop("template", None)  # the default template is 10 kB per figure
    return json.dumps(_round(data), separators=(",", ":"))


def _script_tag(plotlyjs: PlotlyJs) -> str:
    if plotlyjs == "cdn":
        version = plotly.offline.get_plotlyjs_version()
        return (
            f'<script src="https://cdn.plot.ly/plotly-{version}.min.js" charset="utf-8"></script>'
        )
    if plotlyjs == "inline":
        return f"<script>{plotly.offline.get_plotlyjs()}</script>"
    raise InvalidArgument(f"plotlyjs is {plotlyjs!r}.", hint="Use 'cdn' or 'inline'.")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.4g}"
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(str(value))


def drift_report_html(
    report: DriftReport,
    *,
    title: str = "Drift report",
    timeline: DriftTimeline | None = None,
    subtitle: str = "",
    plotlyjs: PlotlyJs = "cdn",
    max_histograms: int | None = None,
) -> str:
    """The report as an HTML page (see the module docstring).

    Args:
        report: what :func:`~.drift.compute_drift` returned (with histograms for the figures).
        title: the page's heading.
        timeline: adds the drift-over-time figure.
        subtitle: a line under the heading (deployment, version, window).
        plotlyjs: ``"cdn"`` or ``"inline"``.
        max_histograms: draw at most this many histograms (None: one per feature).
    """
    script = _script_tag(plotlyjs)
    figures: list[tuple[str, str]] = []
    features = [f for f in report.features if f.histogram is not None]
    if max_histograms is not None:
        features = features[:max_histograms]
    if timeline is not None:
        figures.append(("timeline", _figure_json(drift_over_time_figure(timeline))))
    for i, feature in enumerate(features):
        figures.append((f"feature-{i}", _figure_json(histogram_figure(feature))))
    rows = []
    for row in feature_table(report):
        css = ' class="drifted"' if row["drifted"] else ""
        cells = "".join(
            f"<td>{_cell(row[k])}</td>"
            for k in ("feature", "type", "test", "score", "p_value", "effect_size", "drifted")
        )
        rows.append(f"<tr{css}>{cells}</tr>")
    verdict = "Dataset drift" if report.dataset_drift else "No dataset drift"
    summary = (
        f"{verdict}: {report.n_drifted} of {report.n_features} features drifted "
        f"({report.drift_share:.0%}; threshold {report.drift_share_threshold:.0%}). "
        f"{report.n_reference:,} reference rows, {report.n_current:,} current rows; "
        f"p-values corrected by {html.escape(report.correction)}."
    )
    skipped = "".join(
        f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in report.skipped.items()
    )
    divs = "\n".join(f'<div class="figure" id="{name}"></div>' for name, _ in figures)
    plots = "\n".join(
        f'Plotly.newPlot("{name}", F[{i}].data, F[{i}].layout, {{responsive: true}});'
        for i, (name, _) in enumerate(figures)
    )
    data = ",".join(payload for _, payload in figures)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style>
{script}
</head><body>
<h1>{html.escape(title)}</h1>
<p class="muted">{html.escape(subtitle)}</p>
<p>{summary}</p>
<table><thead><tr><th>feature</th><th>type</th><th>test</th><th>score</th><th>p-value (adjusted)</th>
<th>effect size</th><th>drifted</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody></table>
{f"<h2>Not compared</h2><ul>{skipped}</ul>" if skipped else ""}
<h2>Distributions and drift over time</h2>
{divs}
<script>
const F = [{data}];
{plots}
</script>
</body></html>
"""
