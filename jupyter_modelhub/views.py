"""Views of records for people: one object renders as an aligned text table in a terminal,
an HTML table in a notebook (``_repr_html_``) and JSON for scripts.

Shared by the CLI and the magics so that both show the same thing.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .deploy.records import DeploymentStatus, Revision
from .experiments.policy import CHAMPION, TrafficPolicy
from .models import HistoryEvent, ModelSummary, ModelVersion, Record

if TYPE_CHECKING:  # monitoring and the statistics load scipy: only the verbs that use them do
    from .experiments.analysis import ExperimentAnalysis
    from .experiments.quality import QualityTimeline
    from .experiments.records import Interval
    from .experiments.shadow import ShadowReport
    from .experiments.sizing import SampleSizePlan
    from .monitoring.records import DriftReport, FeatureDrift
    from .monitoring.scrape import HealthPoint
    from .monitoring.service import DeploymentDrift


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class View:
    """What every view offers: text for terminals (also its ``str``/``repr``) and JSON."""

    payload: Any = None

    def to_text(self) -> str:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(_plain(self.payload), indent=2, default=str)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()


@dataclass(repr=False)
class Table(View):
    """Rows under named columns, with an optional title and a JSON payload for ``--json``."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str = ""
    payload: Any = None
    empty: str = "(nothing)"
    #: lines shown under the table (a verdict, a legend)
    notes: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        return "\n".join([self._text_table(), *self.notes])

    def _text_table(self) -> str:
        cells = [[_cell(v) for v in row] for row in self.rows]
        lines = [self.title] if self.title else []
        if not cells:
            return "\n".join([*lines, self.empty])
        widths = [
            max(len(str(col)), *(len(row[i]) for row in cells))
            for i, col in enumerate(self.columns)
        ]
        lines.append(
            "  ".join(
                str(c).upper().ljust(w) for c, w in zip(self.columns, widths, strict=True)
            ).rstrip()
        )
        for row in cells:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        title = (
            "<p><strong>" + html.escape(self.title).replace("\n", "<br>") + "</strong></p>"
            if self.title
            else ""
        )
        notes = "".join(f"<p>{html.escape(line)}</p>" for line in self.notes)
        return title + self._html_table() + notes

    def _html_table(self) -> str:
        if not self.rows:
            return f"<p><em>{html.escape(self.empty)}</em></p>"
        head = "".join(
            f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in self.columns
        )
        body = "".join(
            "<tr>"
            + "".join(f"<td style='text-align:left'>{html.escape(_cell(v))}</td>" for v in row)
            + "</tr>"
            for row in self.rows
        )
        return f"<table class='jp-ModelHub-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(repr=False)
class Message(View):
    """A one-line result (``Registered fraud@v0.0.3``) with its record for ``--json``."""

    text: str
    payload: Any = None
    details: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        return "\n".join([self.text, *self.details])

    def _repr_html_(self) -> str:
        extra = "".join(f"<br><span>{html.escape(d)}</span>" for d in self.details)
        return f"<div class='jp-ModelHub-message'>{html.escape(self.text)}{extra}</div>"


@dataclass(repr=False)
class Lines(View):
    """Lines of text shown as they are (a log): preformatted in a notebook."""

    lines: list[str]
    empty: str = "(no lines)"

    def to_text(self) -> str:
        return "\n".join(self.lines) if self.lines else self.empty

    def _repr_html_(self) -> str:
        return f"<pre class='jp-ModelHub-log'>{html.escape(self.to_text())}</pre>"

    def to_json(self) -> str:
        return json.dumps({"lines": self.lines}, indent=2)


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def models_table(models: list[ModelSummary]) -> Table:
    return Table(
        ["name", "latest", "versions", "stages", "updated"],
        [
            [
                m.name + (" (deprecated)" if m.deprecated else ""),
                m.latest,
                m.versions,
                m.stages,
                m.updated,
            ]
            for m in models
        ],
        payload=models,
        empty="No models yet. Register one with `%modelhub register MODEL --name NAME`.",
    )


def versions_table(name: str, versions: list[ModelVersion]) -> Table:
    return Table(
        ["version", "stages", "flavor", "metrics", "author", "created", "description"],
        [
            [
                v.version,
                v.stages,
                v.meta.flavor,
                v.meta.metrics,
                v.meta.author,
                v.meta.created,
                v.meta.description,
            ]
            for v in versions
        ],
        title=f"Versions of {name}",
        payload=versions,
    )


def version_detail(version: ModelVersion) -> Table:
    meta = version.meta
    signature = meta.signature
    rows: list[list[Any]] = [
        ["version", version.ref],
        ["stages", version.stages],
        ["flavor", f"{meta.flavor} ({meta.model_type})" if meta.model_type else meta.flavor],
        ["files", sorted(meta.files.values())],
        [
            "artifact",
            f"{meta.artifact.md5} ({meta.artifact.size:,} bytes, {meta.artifact.nfiles} files)",
        ],
        ["created", f"{_cell(meta.created)} by {meta.author}"],
        ["description", meta.description],
        ["labels", meta.labels],
        ["metrics", meta.metrics],
        ["params", meta.params],
    ]
    if signature:
        inputs = ", ".join(f"{f.name}:{f.dtype}" for f in signature.inputs[:12])
        if len(signature.inputs) > 12:
            inputs += f", … ({len(signature.inputs)} in all)"
        rows.append(["inputs", f"{signature.input_kind} {list(signature.input_shape)}: {inputs}"])
        if signature.outputs:
            rows.append(["outputs", ", ".join(f"{f.name}:{f.dtype}" for f in signature.outputs)])
    lineage = meta.lineage
    rows += [
        ["data hash", lineage.data_hash],
        [
            "code commit",
            f"{lineage.code_commit or ''}{' (uncommitted changes)' if lineage.code_dirty else ''}",
        ],
        ["notebook", lineage.notebook],
        ["environment", {"python": lineage.python, **lineage.environment}],
    ]
    if meta.reference:
        ref = meta.reference
        rows.append(
            [
                "reference data",
                f"{ref.rows:,} of {ref.total_rows:,} rows, {len(ref.columns)} columns",
            ]
        )
    rows.append(["git", f"tag {version.tag}, commit {version.commit[:12]}"])
    return Table(
        ["field", "value"], [r for r in rows if r[1] not in (None, "", (), [], {})], payload=version
    )


def history_table(name: str, events: list[HistoryEvent]) -> Table:
    return Table(
        ["time", "event", "version", "stage", "author", "tag"],
        [[e.time, e.kind, e.version, e.stage, e.author, e.tag] for e in events],
        title=f"History of {name}",
        payload=events,
    )


def deployment_summary(status: DeploymentStatus) -> list[str]:
    """A few lines saying what a deployment serves, where, and how it is doing."""
    following = f", follows stage {status.ref.split('#', 1)[1]!r}" if status.follow_stage else ""
    serving = (
        f"serving {status.model}@{status.serving_version}"
        if status.serving_version
        else ("serving nothing")
    )
    lines = [
        f"Deployment {status.name} ({status.target}): {status.phase}, {serving} at {status.endpoint}",
        f"desired {status.model}@{status.desired_version} (asked {status.ref}{following}), "
        f"revision {status.revision}, {status.ready_replicas}/{status.desired_replicas} replicas ready",
    ]
    if status.controller:
        lines.append(f"experiment controller: {status.controller}")
    if status.last_error:
        lines.append(f"last error: {status.last_error}")
    return lines


def deployment_status(status: DeploymentStatus) -> Table:
    return Table(
        [
            "replica",
            "pid",
            "port",
            "admin port",
            "version",
            "health",
            "uptime",
            "restarts",
            "last error",
        ],
        [
            [
                r.slot,
                r.pid,
                r.port,
                r.admin_port,
                r.version,
                r.health,
                f"{r.uptime_s:.0f} s" if r.uptime_s is not None else None,
                r.restarts,
                r.last_error,
            ]
            for r in status.replicas
        ],
        title="\n".join(deployment_summary(status)),
        payload=status,
        empty="No replica runs.",
    )


def deployments_table(statuses: list[DeploymentStatus]) -> Table:
    return Table(
        ["name", "model", "desired", "serving", "replicas", "phase", "endpoint", "follows"],
        [
            [
                s.name,
                s.model,
                s.desired_version,
                s.serving_version,
                f"{s.ready_replicas}/{s.desired_replicas}",
                s.phase,
                s.endpoint,
                s.ref if s.follow_stage else "",
            ]
            for s in statuses
        ],
        payload=statuses,
        empty="No deployments yet. Deploy a model with `%modelhub deploy MODEL --name NAME`.",
    )


def revisions_table(name: str, revisions: list[Revision]) -> Table:
    last = len(revisions)
    return Table(
        ["revision", "version", "ref", "replicas", "endpoint", "author", "time", "change"],
        [
            [
                f"{r.revision} (current)" if r.revision == last else r.revision,
                r.spec.version,
                r.spec.ref,
                r.spec.replicas,
                r.spec.endpoint,
                r.author,
                r.time,
                r.message,
            ]
            for r in revisions
        ],
        title=f"Revisions of deployment {name}",
        payload=revisions,
    )


# -- experiments ----------------------------------------------------------------------------------
def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}s"


def _variant_state(policy: TrafficPolicy, variant: str, share: float) -> str:
    """What a variant does for callers right now, in words."""
    if not policy.running:
        return "serving" if variant == CHAMPION else policy.state.replace("_", " ")
    if policy.shadow == variant:
        return "shadow (gets copies)"
    if share > 0:
        return "serving"
    return "standby (kept warm)" if policy.kind == "bluegreen" else "idle"


def experiment_headline(status: DeploymentStatus) -> str:
    """``split 3f2a9c on fraud-svc: running`` (and why it ended, if it did)."""
    policy = status.traffic
    if policy is None:
        return f"Deployment {status.name} runs no experiment"
    reason = f" ({policy.reason})" if policy.reason and not policy.running else ""
    return (
        f"{policy.kind} {policy.experiment} on {status.name}: "
        f"{policy.state.replace('_', ' ')}{reason}"
    )


def experiment_details(policy: TrafficPolicy) -> list[str]:
    """The lines under an experiment's headline: when, canary step, key, guardrails."""
    lines = [f"started {policy.started}" if policy.started else ""]
    if policy.kind == "canary":
        ramp = " -> ".join(_percent(s) for s in policy.steps)
        lines.append(
            f"step {policy.step + 1} of {len(policy.steps)} ({ramp}), "
            f"{_seconds(policy.dwell_seconds)} per step"
        )
    lines.append(f"sticky key: request field {policy.key!r} or the X-Modelhub-Key header"
                 if policy.key else "sticky key: the X-Modelhub-Key header")  # fmt: skip
    rails = policy.guardrails
    p95 = f", p95 <= {_seconds(rails.max_p95_seconds)}" if rails.max_p95_seconds else ""
    lines.append(
        f"guardrails: error rate <= {_percent(rails.max_error_rate)}{p95}, "
        f"judged on >= {rails.min_requests} requests"
    )
    return [line for line in lines if line]


def _variant_rows(status: DeploymentStatus, policy: TrafficPolicy) -> list[list[Any]]:
    shares = policy.serving_weights()
    rows = []
    for variant in (CHAMPION, *sorted(policy.challengers)):
        version = status.desired_version if variant == CHAMPION else policy.challengers[variant]
        share = shares[variant]
        state = _variant_state(policy, variant, share)
        reason = policy.reason if variant != CHAMPION and not policy.running else ""
        rows.append([variant, version, _percent(share), state, reason])
    return rows


VARIANT_COLUMNS = ["variant", "version", "share", "state", "reason"]


def experiment_status(status: DeploymentStatus) -> Table:
    """One row per variant of a deployment's experiment: version, share, state, reason."""
    policy = status.traffic
    if policy is None:
        return Table(
            VARIANT_COLUMNS,
            [],
            title=experiment_headline(status),
            payload=status,
            empty=f"Start one with `ab start {status.name} --challenger VERSION --split 90/10`.",
        )
    return Table(
        VARIANT_COLUMNS,
        _variant_rows(status, policy),
        title="\n".join([experiment_headline(status), *experiment_details(policy)]),
        payload=status,
    )


def experiment_message(verb: str, status: DeploymentStatus) -> Message:
    """``Started split 3f2a9c on fraud-svc`` with a line per variant, for start/stop/...

    After a promotion the deployment has no experiment any more: the line says what it serves.
    """
    policy = status.traffic
    if policy is None:
        return Message(
            f"{verb}: deployment {status.name} serves {status.model}@{status.desired_version}",
            status,
            deployment_summary(status)[1:],
        )
    details = [
        f"{variant} {version}: {share} ({state})" + (f", {reason}" if reason else "")
        for variant, version, share, state, reason in _variant_rows(status, policy)
    ]
    return Message(
        f"{verb} {policy.kind} {policy.experiment} on {status.name}",
        status,
        details + experiment_details(policy)[1:],
    )


def _interval(ci: Interval | None, fmt: str) -> str:
    return f"[{format(ci.low, fmt)}, {format(ci.high, fmt)}]" if ci is not None else ""


def _with_ci(value: float | None, ci: Interval | None, fmt: str) -> str:
    if value is None:
        return ""
    return f"{format(value, fmt)} {_interval(ci, fmt)}".strip()


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def ab_report_table(analysis: ExperimentAnalysis) -> Table:
    """The A/B report, one row per variant: counts, estimate with its interval, and for each
    challenger the difference, the lift, the p-value, the always-valid p and the verdict."""
    report = analysis.report
    rate = report.metric == "rate"
    value_fmt = ".2%" if rate else ".4g"
    diff_fmt = "+.2%" if rate else "+.4g"
    comparisons = {c.challenger: c for c in report.comparisons}
    rows = []
    for variant in report.variants:
        row: list[Any] = [
            variant.name,
            analysis.requests.get(variant.name, 0),
            analysis.outcomes.get(variant.name, 0),
            _with_ci(variant.estimate, variant.ci, value_fmt),
        ]
        comparison = comparisons.get(variant.name)
        sequential = analysis.sequential.get(variant.name)
        if comparison is None:
            row += ["", "", "", "", "control"]
        else:
            verdict = comparison.status.replace("_", " ")
            if sequential is not None and sequential.rejected:
                verdict += " (always-valid: safe to stop)"
            row += [
                _with_ci(comparison.difference, comparison.difference_ci, diff_fmt),
                _with_ci(comparison.relative_lift, comparison.relative_lift_ci, "+.1%"),
                _p(comparison.adjusted_p_value),
                _p(sequential.p_value) if sequential is not None else "",
                verdict,
            ]
        rows.append(row)
    level = f"{report.confidence_level:.0%}"
    return Table(
        [
            "variant",
            "requests",
            "outcomes",
            f"{report.metric_label} ({level} CI)",
            f"difference ({level} CI)",
            f"lift ({level} CI)",
            "p-value",
            "always-valid p",
            "verdict",
        ],
        rows,
        title=f"A/B report of experiment {analysis.experiment}: {report.metric} of the "
        f"outcomes, alpha {report.alpha:g}, control {report.control}",
        payload=analysis,
        notes=analysis.summary,
    )


def shadow_report_table(report: ShadowReport) -> Table:
    """The rows where champion and challenger disagree most, under the agreement summary."""
    notes = []
    if report.confusion is not None:
        labels = [_cell(label) for label in report.confusion.labels]
        notes.append("confusion (rows: champion, columns: challenger): " + ", ".join(labels))
        for label, counts in zip(labels, report.confusion.counts, strict=True):
            notes.append(f"  {label}: " + " ".join(str(c) for c in counts))
    if report.differences is not None:
        quantiles = ", ".join(f"{k} {v:.4g}" for k, v in report.differences.quantiles.items())
        notes.append(f"|difference| quantiles: {quantiles}")
    return Table(
        ["request", "champion", "challenger", "difference"],
        [[d.index, d.champion, d.challenger, d.difference] for d in report.top_disagreements],
        title=f"Shadow comparison: {report.summary}",
        payload=report,
        empty="No disagreement.",
        notes=notes,
    )


def sample_size_message(plan: SampleSizePlan) -> Message:
    """The plan's summary, with the numbers behind it."""
    details = [
        f"effect {plan.absolute_effect:+g} (standardised {plan.effect_size:.4g}); "
        f"alpha {plan.alpha:g}, power {plan.power:g}, {plan.n_variants} variants",
        f"method: {plan.method}",
    ]
    return Message(plan.summary, plan, details)


# -- monitoring -----------------------------------------------------------------------------------
DRIFT_COLUMNS = ["feature", "type", "test", "score", "p-value", "effect size", "drifted"]


def _drift_row(feature: FeatureDrift) -> list[Any]:
    p_value = feature.p_value_adjusted if feature.p_value_adjusted is not None else feature.p_value
    return [
        feature.column,
        feature.kind,
        feature.test,
        feature.statistic,
        _p(p_value),
        f"{feature.effect_size:.3g} ({feature.effect_measure})",
        "DRIFTED" if feature.drifted else "no",
    ]


def drift_verdict(report: DriftReport) -> str:
    """``1 of 4 features drifted (25%): no dataset drift``."""
    verdict = "DATASET DRIFT" if report.dataset_drift else "no dataset drift"
    return (
        f"{report.n_drifted} of {report.n_features} features drifted "
        f"({report.drift_share:.0%}, threshold {report.drift_share_threshold:.0%}): {verdict}"
    )


def _drift_notes(report: DriftReport) -> list[str]:
    notes = [f"p-values corrected by {report.correction}; effect size beside each test"]
    notes += [f"not compared: {column} ({why})" for column, why in report.skipped.items()]
    if report.ignored_columns:
        notes.append(f"not in the reference: {', '.join(report.ignored_columns)}")
    notes += [f"{f.column}: {f.note}" for f in report.features if f.note]
    return notes


def drift_report_table(report: DriftReport, title: str) -> Table:
    """A drift report, one row per feature, sorted by drift (drifted first)."""
    return Table(
        DRIFT_COLUMNS,
        [_drift_row(f) for f in report.features],
        title=f"{title}\n{drift_verdict(report)}",
        payload=report.to_dict(histograms=False),
        empty="No feature compared.",
        notes=_drift_notes(report),
    )


def deployment_drift_table(drift: DeploymentDrift) -> Table:
    """The drift of a deployment's logged requests: features sorted by drift, output drift
    and the window in the title, drift over time (if asked) under the table."""
    first = _cell(drift.first) or "-"
    last = _cell(drift.last) or "-"
    table = drift_report_table(
        drift.report,
        f"Drift of deployment {drift.deployment} ({drift.ref}): {drift.n_rows:,} requests "
        f"logged {drift.window.describe()}, from {first} to {last} UTC",
    )
    table.payload = drift.to_dict(histograms=False)
    output = drift.output
    if output is not None:
        table.notes.insert(
            0,
            f"model output ({output.column}): {output.test} {output.statistic:.4g}, "
            + ("DRIFTED" if output.drifted else "no drift"),
        )
    elif drift.output_note:
        table.notes.insert(0, f"model output not compared: {drift.output_note}")
    timeline = drift.timeline
    if timeline is not None:
        table.notes.append("drift over time (window start: share of drifted features, rows):")
        for start, share, rows in zip(
            timeline.to_dict()["starts"], timeline.drift_share, timeline.n_rows, strict=True
        ):
            shown = "-" if share != share else f"{share:.0%}"  # NaN: too few rows
            table.notes.append(f"  {start}: {shown}, {int(rows)} rows")
    return table


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.3g} ms"


def quality_table(name: str, timeline: QualityTimeline) -> Table:
    """Outcome mean (with its 95% interval) per window and variant."""
    what = "rate" if timeline.metric == "rate" else "mean"
    rows = [
        [
            p.start.strftime("%Y-%m-%d %H:%M"),
            p.variant,
            p.n,
            f"{p.mean:.4g}",
            f"[{p.low:.4g}, {p.high:.4g}]" if p.low is not None and p.high is not None else "-",
        ]
        for p in timeline.points
    ]
    return Table(
        ["window", "variant", "outcomes", what, "95% CI"],
        rows,
        title=f"Quality of {name}: outcome {what} per {timeline.step_seconds:g} s window",
        payload=timeline,
    )


def monitor_table(name: str, points: list[HealthPoint], status: DeploymentStatus) -> Table:
    """A deployment's health per variant over the last interval, its replicas under it."""
    seconds = max((p.end - p.start for p in points), default=0.0)
    rows = [
        [
            p.variant or "-",
            f"{p.requests_per_second:.3g}",
            int(p.requests),
            _ms(p.p50_latency),
            _ms(p.p99_latency),
            "" if p.error_rate is None else f"{p.error_rate:.2%}",
            "" if p.batch_size is None else f"{p.batch_size:.3g}",
        ]
        for p in points
        if p.deployment in (name, "")
    ]
    notes = [
        f"replica {r.slot}: {r.health}, version {r.version}, port {r.port}, "
        f"{r.restarts} restart(s)" + (f", last error: {r.last_error}" if r.last_error else "")
        for r in status.replicas
    ]
    return Table(
        ["variant", "requests/s", "requests", "p50", "p99", "error rate", "batch size"],
        rows,
        title=f"Health of deployment {name} over the last {seconds:.3g} s "
        f"({status.ready_replicas}/{status.desired_replicas} replicas ready)",
        payload={
            "name": name,
            "health": [p.to_dict() for p in points],
            "replicas": [r.to_dict() for r in status.replicas],
        },
        empty="No request seen yet.",
        notes=notes,
    )
