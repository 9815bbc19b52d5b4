"""Monitoring: data drift and the health of deployments.

The drift engine (domain code: numpy, scipy, pyarrow; no pandas in the hot path)::

    profile = build_profile(reference_df)          # once, at registration
    profile.save(path); profile = ReferenceProfile.load(path)
    report = compute_drift(profile, current_df)    # DriftReport, features sorted by drift
    output_drift(profile, predictions)             # FeatureDrift of the prediction column
    timeline, reports = drift_over_time(profile, df, df["ts"], window="1h", step="15m")

Rules (default tests, correction, minimum effect, bad input) are in :mod:`.drift`; the profile
and its storage in :mod:`.profile`; the statistics in :mod:`.drift_tests`.

Around the engine: :class:`DriftMonitor` (:mod:`.service`: cached reference profiles, prediction
log windows), Prometheus gauges (:mod:`.metrics`), exported alerting rules and a Grafana
dashboard (:mod:`.alerts`), built-in alerts by webhook and e-mail (:mod:`.notify`, fed by
:mod:`.scrape`), and plotly figures and an HTML export (:mod:`.figures`, :mod:`.html`; not
imported here, to keep plotly out of every import).
"""

from jupyter_modelhub.monitoring.alerts import AlertThresholds, alert_rules, grafana_dashboard
from jupyter_modelhub.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    TESTS,
    DriftOptions,
    adjust_pvalues,
    compute_drift,
    default_test,
    output_drift,
)
from jupyter_modelhub.monitoring.metrics import DriftMetrics
from jupyter_modelhub.monitoring.notify import (
    AlertEvaluator,
    AlertLoop,
    AlertRule,
    EmailNotifier,
    SmtpSettings,
    WebhookNotifier,
    default_rules,
)
from jupyter_modelhub.monitoring.profile import (
    CategoricalProfile,
    NumericalProfile,
    ReferenceProfile,
    build_profile,
    load_profile,
    save_profile,
)
from jupyter_modelhub.monitoring.records import (
    DriftReport,
    DriftTimeline,
    FeatureDrift,
    Histogram,
)
from jupyter_modelhub.monitoring.scrape import HealthPoint, health_between, parse_metrics
from jupyter_modelhub.monitoring.service import DeploymentDrift, DriftMonitor
from jupyter_modelhub.monitoring.windows import drift_over_time, parse_duration

__all__ = [
    "DEFAULT_THRESHOLDS",
    "TESTS",
    "AlertEvaluator",
    "AlertLoop",
    "AlertRule",
    "AlertThresholds",
    "CategoricalProfile",
    "DeploymentDrift",
    "DriftMetrics",
    "DriftMonitor",
    "DriftOptions",
    "DriftReport",
    "DriftTimeline",
    "EmailNotifier",
    "FeatureDrift",
    "HealthPoint",
    "Histogram",
    "NumericalProfile",
    "ReferenceProfile",
    "SmtpSettings",
    "WebhookNotifier",
    "adjust_pvalues",
    "alert_rules",
    "build_profile",
    "compute_drift",
    "default_rules",
    "default_test",
    "drift_over_time",
    "grafana_dashboard",
    "health_between",
    "load_profile",
    "output_drift",
    "parse_duration",
    "parse_metrics",
    "save_profile",
]
