"""Experiments: the statistics behind A/B tests, canaries and shadow comparisons.

Pure domain code (numpy and scipy, no I/O). Every result is a frozen record with ``to_dict()``.

- :mod:`.records`: sufficient statistics a server aggregates (``BinarySummary``,
  ``NumericSummary``), mergeable across chunks and replicas;
- :mod:`.abtest`: the fixed-horizon A/B/n report (:func:`ab_report`);
- :mod:`.sequential`: always-valid p-values and intervals for continuous monitoring (mSPRT);
- :mod:`.sizing`: requests and duration an experiment needs;
- :mod:`.shadow`: champion vs challenger predictions on the same requests;
- :mod:`.guardrails`: error-rate and latency limits for canaries;
- :mod:`.inference`: the underlying tests and intervals.
"""

from typing import TYPE_CHECKING

from jupyter_modelhub._lazy import lazy_exports

if TYPE_CHECKING:
    from jupyter_modelhub.experiments.abtest import ABReport, Comparison, VariantEstimate, ab_report
    from jupyter_modelhub.experiments.guardrails import (
        GuardrailBreach,
        GuardrailPolicy,
        GuardrailResult,
        LatencyHistogram,
        VariantWindow,
        check_guardrails,
        histogram_quantile,
    )
    from jupyter_modelhub.experiments.records import BinarySummary, Interval, NumericSummary
    from jupyter_modelhub.experiments.sequential import SequentialResult, sequential_test
    from jupyter_modelhub.experiments.shadow import ShadowReport, compare_predictions
    from jupyter_modelhub.experiments.sizing import (
        SampleSizePlan,
        sample_size_for_mean,
        sample_size_for_rate,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ABReport": "abtest",
        "Comparison": "abtest",
        "VariantEstimate": "abtest",
        "ab_report": "abtest",
        "GuardrailBreach": "guardrails",
        "GuardrailPolicy": "guardrails",
        "GuardrailResult": "guardrails",
        "LatencyHistogram": "guardrails",
        "VariantWindow": "guardrails",
        "check_guardrails": "guardrails",
        "histogram_quantile": "guardrails",
        "BinarySummary": "records",
        "Interval": "records",
        "NumericSummary": "records",
        "SequentialResult": "sequential",
        "sequential_test": "sequential",
        "ShadowReport": "shadow",
        "compare_predictions": "shadow",
        "SampleSizePlan": "sizing",
        "sample_size_for_mean": "sizing",
        "sample_size_for_rate": "sizing",
    },
)

__all__ = [
    "ABReport",
    "BinarySummary",
    "Comparison",
    "GuardrailBreach",
    "GuardrailPolicy",
    "GuardrailResult",
    "Interval",
    "LatencyHistogram",
    "NumericSummary",
    "SampleSizePlan",
    "SequentialResult",
    "ShadowReport",
    "VariantEstimate",
    "VariantWindow",
    "ab_report",
    "check_guardrails",
    "compare_predictions",
    "histogram_quantile",
    "sample_size_for_mean",
    "sample_size_for_rate",
    "sequential_test",
]
