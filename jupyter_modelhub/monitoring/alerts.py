"""Prometheus alerting rules and a Grafana dashboard for the model servers' metrics.

:func:`alert_rules` writes a rules file (``promtool check rules`` accepts it) with three alerts
per deployment scope: the error rate (5xx answers of the prediction endpoints), the p99 latency
of those endpoints, and the dataset drift share exported by :mod:`.metrics`.
:func:`grafana_dashboard` returns a dashboard (JSON model, schema 39) with requests/s, p50/p99
latency, error rate and batch size per variant, and the drift share.

The PromQL lives here once (:func:`queries`); the built-in evaluator of :mod:`.notify` computes
the same quantities from scrapes, for users without Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from jupyter_modelhub.errors import InvalidArgument

PREDICT_ENDPOINTS = "v2_infer|invocations"
_DURATION = re.compile(r"\d+(ms|s|m|h|d|w|y)")


@dataclass(frozen=True)
class AlertThresholds:
    """When the exported rules fire.

    Attributes:
        error_rate: share of 5xx answers of the prediction endpoints (0.05 = 5%).
        p99_latency_seconds: 99th percentile of the prediction endpoints' latency.
        drift_share: dataset drift share (share of features that drifted).
        rate_window: the range of ``rate()`` (a Prometheus duration).
        for_: how long a condition must hold before the alert fires.
        drift_for: the same for drift (drift reports are computed less often).
        severity: the ``severity`` label of the alerts.
    """

    error_rate: float = 0.05
    p99_latency_seconds: float = 0.5
    drift_share: float = 0.5
    rate_window: str = "5m"
    for_: str = "5m"
    drift_for: str = "15m"
    severity: str = "warning"

    def __post_init__(self) -> None:
        for name in ("error_rate", "drift_share"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1):
                raise InvalidArgument(f"{name} is {value!r}.", hint="Use a share in (0, 1].")
        if not (math.isfinite(self.p99_latency_seconds) and self.p99_latency_seconds > 0):
            raise InvalidArgument(
                f"p99_latency_seconds is {self.p99_latency_seconds!r}.",
                hint="Use a positive number of seconds.",
            )
        for name in ("rate_window", "for_", "drift_for"):
            if not _DURATION.fullmatch(getattr(self, name)):
                raise InvalidArgument(
                    f"{name.rstrip('_')} is {getattr(self, name)!r}.",
                    hint="Use a Prometheus duration such as 30s, 5m or 1h.",
                )


def _selector(deployments: Sequence[str] | None, **labels: str) -> str:
    """``{deployment=~"a|b", k="v"}``: the label matchers of every query."""
    matchers = [f'{k}=~"{v}"' if "|" in v else f'{k}="{v}"' for k, v in labels.items()]
    if deployments:
        names = "|".join(re.escape(d) for d in deployments)
        matchers.insert(0, f'deployment=~"{_quote(names)}"')
    return "{" + ", ".join(matchers) + "}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def queries(
    deployments: Sequence[str] | None = None, *, window: str = "5m", by: str = "deployment, variant"
) -> dict[str, str]:
    """The PromQL of each signal, grouped ``by`` these labels (over ``deployments`` or all)."""
    requests = _selector(deployments, endpoint=PREDICT_ENDPOINTS)
    errors = _selector(deployments, endpoint=PREDICT_ENDPOINTS, code="5xx")
    everything = _selector(deployments)
    rate_requests = f"sum by ({by}) (rate(modelhub_requests_total{requests}[{window}]))"

    def latency(q: float) -> str:
        return (
            f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate(modelhub_request_duration_seconds_bucket{requests}[{window}])))"
        )

    return {
        "requests_per_second": rate_requests,
        "error_rate": f"sum by ({by}) (rate(modelhub_requests_total{errors}[{window}])) "
        f"/ {rate_requests}",
        "p50_latency": latency(0.5),
        "p99_latency": latency(0.99),
        "batch_size": f"sum by ({by}) (rate(modelhub_batch_size_sum{everything}[{window}])) "
        f"/ sum by ({by}) (rate(modelhub_batch_size_count{everything}[{window}]))",
        "drift_share": f"max by (deployment) (modelhub_dataset_drift_share{everything})",
    }


def alert_rules(
    deployments: Sequence[str] | None = None,
    thresholds: AlertThresholds | None = None,
    *,
    group: str = "modelhub",
) -> str:
    """Prometheus alerting rules (YAML) for ``deployments`` (None: every deployment).

    Alerts: ``ModelhubHighErrorRate``, ``ModelhubHighLatencyP99`` (per deployment and variant),
    ``ModelhubDataDrift`` (per deployment).
    """
    t = thresholds or AlertThresholds()
    q = queries(deployments, window=t.rate_window)
    labels = {"severity": t.severity}
    rules = [
        {
            "alert": "ModelhubHighErrorRate",
            "expr": f"({q['error_rate']}) > {t.error_rate:g}",
            "for": t.for_,
            "labels": dict(labels),
            "annotations": {
                "summary": "{{ $labels.deployment }} ({{ $labels.variant }}) answers "
                "{{ $value | humanizePercentage }} of predictions with a server error",
                "description": f"More than {t.error_rate:.1%} of the prediction requests "
                f"failed with 5xx over {t.rate_window}.",
            },
        },
        {
            "alert": "ModelhubHighLatencyP99",
            "expr": f"({q['p99_latency']}) > {t.p99_latency_seconds:g}",
            "for": t.for_,
            "labels": dict(labels),
            "annotations": {
                "summary": "{{ $labels.deployment }} ({{ $labels.variant }}) p99 latency is "
                "{{ $value | humanizeDuration }}",
                "description": f"The 99th percentile of prediction latency exceeded "
                f"{t.p99_latency_seconds:g}s over {t.rate_window}.",
            },
        },
        {
            "alert": "ModelhubDataDrift",
            "expr": f"({q['drift_share']}) >= {t.drift_share:g}",
            "for": t.drift_for,
            "labels": dict(labels),
            "annotations": {
                "summary": "{{ $labels.deployment }}: {{ $value | humanizePercentage }} of "
                "the features drifted",
                "description": "Run `modelhub drift {{ $labels.deployment }}` to see which.",
            },
        },
    ]
    document = {"groups": [{"name": group, "rules": rules}]}
    return yaml.safe_dump(document, sort_keys=False, width=1000)


# -- Grafana ---------------------------------------------------------------------------------------
def _panel(
    panel_id: int,
    title: str,
    targets: list[tuple[str, str]],
    unit: str,
    x: int,
    y: int,
    datasource: dict[str, str],
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": datasource,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": datasource,
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def grafana_dashboard(
    deployments: Sequence[str] | None = None,
    *,
    title: str = "jupyter-modelhub",
    datasource_uid: str = "${datasource}",
    window: str = "5m",
) -> dict[str, Any]:
    """A Grafana dashboard (JSON model) for ``deployments`` (None: all, with a variable).

    Panels: requests/s, p50/p99 latency, error rate, batch size (per deployment and variant),
    dataset drift share (per deployment). ``datasource_uid`` defaults to a dashboard variable
    so the import asks which Prometheus to use.
    """
    datasource = {"type": "prometheus", "uid": datasource_uid}
    scope = list(deployments) if deployments else None
    q = queries(scope, window=window)
    legend = "{{deployment}} {{variant}}"
    panels = [
        _panel(
            1,
            "Requests per second",
            [(q["requests_per_second"], legend)],
            "reqps",
            0,
            0,
            datasource,
        ),
        _panel(
            2,
            "Latency p50 / p99",
            [(q["p50_latency"], f"p50 {legend}"), (q["p99_latency"], f"p99 {legend}")],
            "s",
            12,
            0,
            datasource,
        ),
        _panel(3, "Error rate (5xx)", [(q["error_rate"], legend)], "percentunit", 0, 8, datasource),
        _panel(
            4,
            "Batch size (rows per model call)",
            [(q["batch_size"], legend)],
            "none",
            12,
            8,
            datasource,
        ),
        _panel(
            5,
            "Dataset drift share",
            [(q["drift_share"], "{{deployment}}")],
            "percentunit",
            0,
            16,
            datasource,
        ),
    ]
    templating: list[dict[str, Any]] = []
    if datasource_uid == "${datasource}":
        templating.append(
            {
                "name": "datasource",
                "type": "datasource",
                "query": "prometheus",
                "label": "Prometheus",
            }
        )
    return {
        "title": title,
        "uid": None,
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "tags": ["modelhub"],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": templating},
        "panels": panels,
    }
