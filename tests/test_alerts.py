"""Exported alerting rules (checked and unit-tested by promtool) and the Grafana dashboard."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring.alerts import AlertThresholds, alert_rules, grafana_dashboard

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)"
)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
@pytest.mark.parametrize("deployments", [None, ["fraud-svc"], ["fraud-svc", "churn.v2"]])
def test_promtool_accepts_the_rules(tmp_path: Path, deployments) -> None:
    (tmp_path / "rules.yml").write_text(alert_rules(deployments))
    result = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


@needs_promtool
def test_the_rules_fire_on_their_thresholds_and_not_below(tmp_path: Path) -> None:
    """promtool's rule unit tests: synthetic series in, the alerts expected out."""
    thresholds = AlertThresholds(error_rate=0.05, p99_latency_seconds=0.25, drift_share=0.4)
    (tmp_path / "rules.yml").write_text(alert_rules(["fraud", "calm"], thresholds))
    base = {"model": "m", "version": "v1", "variant": "blue", "endpoint": "v2_infer"}
    series = [
        # fraud: 10 of 100 requests per minute fail; calm: 1 of 100 (below 5%)
        _series("modelhub_requests_total", "0+90x30", deployment="fraud", code="2xx", **base),
        _series("modelhub_requests_total", "0+10x30", deployment="fraud", code="5xx", **base),
        _series("modelhub_requests_total", "0+99x30", deployment="calm", code="2xx", **base),
        _series("modelhub_requests_total", "0+1x30", deployment="calm", code="5xx", **base),
        # fraud: every request takes 0.5 s to 1 s; calm: all under 0.1 s
        *(
            _series(
                "modelhub_request_duration_seconds_bucket",
                f"0+{count}x30",
                deployment=deployment,
                le=le,
                **base,
            )
            for deployment, buckets in {
                "fraud": {"0.1": 0, "0.25": 0, "0.5": 0, "1.0": 100, "+Inf": 100},
                "calm": {"0.1": 100, "0.25": 100, "0.5": 100, "1.0": 100, "+Inf": 100},
            }.items()
            for le, count in buckets.items()
        ),
        _series("modelhub_dataset_drift_share", "0.6x30", deployment="fraud"),
        _series("modelhub_dataset_drift_share", "0.2x30", deployment="calm"),
    ]
    labels = {"severity": "warning", "deployment": "fraud", "variant": "blue"}
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": "ModelhubHighErrorRate", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "ModelhubHighErrorRate",
                        "exp_alerts": [
                            {
                                "exp_labels": labels,
                                "exp_annotations": {
                                    "summary": "fraud (blue) answers 10% of predictions with a "
                                    "server error",
                                    "description": "More than 5.0% of the prediction requests "
                                    "failed with 5xx over 5m.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "ModelhubHighLatencyP99",
                        "exp_alerts": [
                            {
                                "exp_labels": labels,
                                "exp_annotations": {
                                    "summary": "fraud (blue) p99 latency is 995ms",
                                    "description": "The 99th percentile of prediction latency "
                                    "exceeded 0.25s over 5m.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "10m", "alertname": "ModelhubDataDrift", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "ModelhubDataDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "deployment": "fraud"},
                                "exp_annotations": {
                                    "summary": "fraud: 60% of the features drifted",
                                    "description": "Run `modelhub drift fraud` to see which.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_carry_the_configured_thresholds() -> None:
    text = alert_rules(
        ["fraud"], AlertThresholds(error_rate=0.02, p99_latency_seconds=1.5, for_="10m")
    )
    rules = {r["alert"]: r for r in yaml.safe_load(text)["groups"][0]["rules"]}
    assert set(rules) == {"ModelhubHighErrorRate", "ModelhubHighLatencyP99", "ModelhubDataDrift"}
    assert rules["ModelhubHighErrorRate"]["expr"].endswith("> 0.02")
    assert rules["ModelhubHighLatencyP99"]["expr"].endswith("> 1.5")
    assert rules["ModelhubHighErrorRate"]["for"] == "10m"
    assert 'deployment=~"fraud"' in rules["ModelhubDataDrift"]["expr"]
    assert "&id" not in text  # no YAML anchors: plain for every reader


@pytest.mark.parametrize(
    "bad",
    [{"error_rate": 0}, {"drift_share": 1.5}, {"p99_latency_seconds": -1}, {"for_": "5 min"}],
)
def test_bad_thresholds_are_refused(bad) -> None:
    with pytest.raises(InvalidArgument):
        AlertThresholds(**bad)


def test_grafana_dashboard_has_the_panels_and_queries() -> None:
    dashboard = json.loads(json.dumps(grafana_dashboard(["fraud"])))  # valid JSON, round trip
    panels = {p["title"]: p for p in dashboard["panels"]}
    assert list(panels) == [
        "Requests per second",
        "Latency p50 / p99",
        "Error rate (5xx)",
        "Batch size (rows per model call)",
        "Dataset drift share",
    ]
    exprs = {title: [t["expr"] for t in p["targets"]] for title, p in panels.items()}
    assert "rate(modelhub_requests_total{" in exprs["Requests per second"][0]
    assert [e.split(",")[0] for e in exprs["Latency p50 / p99"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
    ]
    assert 'code="5xx"' in exprs["Error rate (5xx)"][0]
    assert "modelhub_batch_size_sum" in exprs["Batch size (rows per model call)"][0]
    assert "by (deployment, variant)" in exprs["Batch size (rows per model call)"][0]
    assert "modelhub_dataset_drift_share" in exprs["Dataset drift share"][0]
    assert all('deployment=~"fraud"' in e for es in exprs.values() for e in es)
    assert len({p["id"] for p in dashboard["panels"]}) == 5
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    refs = [t["refId"] for t in panels["Latency p50 / p99"]["targets"]]
    assert refs == ["A", "B"]


@needs_promtool
def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """Every panel query, wrapped in a recording rule, passes promtool's parser."""
    dashboard = grafana_dashboard()
    rules = [
        {"record": f"modelhub:panel_{p['id']}_{t['refId']}", "expr": t["expr"]}
        for p in dashboard["panels"]
        for t in p["targets"]
    ]
    (tmp_path / "r.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": rules}]}))
    result = promtool("check", "rules", "r.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
