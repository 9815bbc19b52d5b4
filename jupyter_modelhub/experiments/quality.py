"""The model's quality over time, from the outcomes posted back to a deployment.

Outcomes (``POST /feedback``: a conversion, whether a prediction was right, an error) are
joined to the requests they belong to (``experiments.analysis.experiment_outcomes``: by request
id, or by sticky key), then averaged per time window and per variant, with a 95% interval
(Wilson's for 0/1 outcomes, Student's t otherwise). An outcome counts in the window in which
it arrived; windows are aligned on the clock (UTC). A drop in a window is the drift that
matters most: the model got worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InvalidArgument
from ..models import Record
from .analysis import experiment_outcomes
from .inference import t_interval, wilson_interval
from .records import NumericSummary


@dataclass(frozen=True)
class QualityPoint(Record):
    """One variant's outcomes in one window: how many, their mean, and its 95% interval."""

    start: datetime
    variant: str
    n: int
    mean: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class QualityTimeline(Record):
    """Outcome means per window (``step_seconds`` long) and variant, oldest first."""

    step_seconds: float
    metric: str  # "rate" (0/1 outcomes) or "mean"
    points: tuple[QualityPoint, ...]


def quality_over_time(
    predictions: Path,
    feedback: Path,
    *,
    step_seconds: float,
    since: datetime | None = None,
) -> QualityTimeline:
    """Mean outcome per ``step_seconds`` window and variant since ``since``.

    Raises:
        InvalidArgument: a step that is not positive, or no outcome to average.
    """
    if not step_seconds > 0:
        raise InvalidArgument(f"The step must be positive, not {step_seconds!r} s.")
    data = experiment_outcomes(predictions, feedback, None, since=since, missing="drop")
    every = [v for v in data.values() if v.outcomes.size]
    if not every:
        raise InvalidArgument(
            "No outcome was posted back for the logged requests yet.",
            hint="POST outcomes to the deployment's /feedback with the request_id it returned.",
        )
    binary = all(np.isin(v.outcomes, (0.0, 1.0)).all() for v in every)
    origin = 0.0  # windows on the clock: whole hours for "1h", whole days for "1d" (UTC)
    points = []
    for variant in every:
        windows = np.floor((variant.times - origin) / step_seconds).astype(np.int64)
        for w in np.unique(windows):
            values = variant.outcomes[windows == w]
            if binary:
                ci = wilson_interval(int(values.sum()), int(values.size))
            else:
                ci = t_interval(NumericSummary.from_values(values))
            points.append(
                QualityPoint(
                    start=datetime.fromtimestamp(origin + w * step_seconds, timezone.utc),
                    variant=variant.name,
                    n=int(values.size),
                    mean=float(values.mean()),
                    low=ci.low if ci is not None else None,
                    high=ci.high if ci is not None else None,
                )
            )
    points.sort(key=lambda p: (p.start, p.variant))
    return QualityTimeline(float(step_seconds), "rate" if binary else "mean", tuple(points))
