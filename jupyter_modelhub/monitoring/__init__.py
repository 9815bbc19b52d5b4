"""Monitoring: data drift and the health of deployments.

The drift engine (domain code: numpy, scipy, pyarrow; no pandas in the hot path)::

    profile = build_profile(reference_df)          # once, at registration
    profile.save(path); profile = ReferenceProfile.load(path)
    report = compute_drift(profile, current_df)    # DriftReport, features sorted by drift
    output_drift(profile, predictions)             # FeatureDrift of the prediction column
    timeline, reports = drift_over_time(profile, df, df["ts"], window="1h", step="15m")

Rules (default tests, correction, minimum effect, bad input) are in :mod:`.drift`; the profile
and its storage in :mod:`.profile`; the statistics in :mod:`.drift_tests`.
"""

from jupyter_modelhub.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    TESTS,
    DriftOptions,
    adjust_pvalues,
    compute_drift,
    default_test,
    output_drift,
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
from jupyter_modelhub.monitoring.windows import drift_over_time, parse_duration

__all__ = [
    "DEFAULT_THRESHOLDS",
    "TESTS",
    "CategoricalProfile",
    "DriftOptions",
    "DriftReport",
    "DriftTimeline",
    "FeatureDrift",
    "Histogram",
    "NumericalProfile",
    "ReferenceProfile",
    "adjust_pvalues",
    "build_profile",
    "compute_drift",
    "default_test",
    "drift_over_time",
    "load_profile",
    "output_drift",
    "parse_duration",
    "save_profile",
]
