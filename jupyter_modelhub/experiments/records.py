"""Sufficient statistics of an outcome: what a server aggregates so analysis never rereads logs.

A binary outcome (converted or not, error or not) is summed up by ``(n, successes)``; a numeric
outcome (revenue, latency, a score) by ``(n, mean, variance)``. Both merge exactly, so per-chunk
or per-replica aggregates combine into the summary of the whole window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.models import Record

MetricKind = Literal["rate", "mean"]


def _whole_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(
            f"{what} must be a whole number, not {value!r}.", hint="Pass a count such as 120."
        )
    if value < 0:
        raise InvalidArgument(
            f"{what} must be >= 0, not {value}.", hint="Counts cannot be negative."
        )
    return int(value)


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{what} must be a number, not {value!r}.") from None
    if not math.isfinite(number):
        raise InvalidArgument(
            f"{what} must be a finite number, not {number}.",
            hint="Drop NaN and infinite values before summarising.",
        )
    return number


def as_1d_array(values: Iterable[Any] | np.ndarray, what: str) -> np.ndarray:
    """``values`` as a finite float64 vector; a clear error for other shapes or NaN/inf."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise InvalidArgument(
            f"{what} must be one-dimensional, not of shape {array.shape}.",
            hint="Pass one value per request (use .ravel() on a column vector).",
        )
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise InvalidArgument(
            f"{what} contain {bad} NaN or infinite value(s).",
            hint="Drop or impute them before summarising.",
        )
    return array


@dataclass(frozen=True)
class Interval(Record):
    """A closed interval ``[low, high]`` (a confidence interval)."""

    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class BinarySummary(Record):
    """A binary outcome over ``n`` requests, ``successes`` of which were 1 (converted, failed…).

    Raises:
        InvalidArgument: ``n`` or ``successes`` is not a whole number >= 0, or ``successes > n``.
    """

    n: int
    successes: int

    kind = "rate"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _whole_number(self.n, "n"))
        object.__setattr__(self, "successes", _whole_number(self.successes, "successes"))
        if self.successes > self.n:
            raise InvalidArgument(
                f"successes ({self.successes}) cannot exceed n ({self.n}).",
                hint="n counts every request, successes only those with outcome 1.",
            )

    @property
    def rate(self) -> float | None:
        """``successes / n``; ``None`` when ``n == 0``."""
        return self.successes / self.n if self.n else None

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[Any] | np.ndarray) -> BinarySummary:
        """Summarise a vector of 0/1 (or boolean) outcomes.

        Raises:
            InvalidArgument: a value is not 0, 1, True or False.
        """
        array = as_1d_array(outcomes, "outcomes")
        if not np.all((array == 0) | (array == 1)):
            raise InvalidArgument(
                "Binary outcomes must be 0 or 1 (or booleans).",
                hint="Use NumericSummary.from_values for numeric outcomes.",
            )
        return cls(n=int(array.size), successes=int(np.count_nonzero(array)))

    def merge(self, other: BinarySummary) -> BinarySummary:
        """The summary of both samples together."""
        return BinarySummary(n=self.n + other.n, successes=self.successes + other.successes)


@dataclass(frozen=True)
class NumericSummary(Record):
    """A numeric outcome: count, mean and unbiased sample variance (``ddof=1``).

    ``variance`` is ``0.0`` when ``n < 2`` (a single value has no spread to estimate); tests
    that need a variance treat such a sample as "not enough data". ``mean`` is ``0.0`` when
    ``n == 0``.

    Raises:
        InvalidArgument: ``n`` is not a whole number >= 0, ``mean`` is not finite, or
            ``variance`` is negative or not finite.
    """

    n: int
    mean: float
    variance: float

    kind = "mean"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _whole_number(self.n, "n"))
        object.__setattr__(self, "mean", _finite(self.mean, "mean"))
        variance = _finite(self.variance, "variance")
        if variance < 0:
            raise InvalidArgument(
                f"variance must be >= 0, not {variance}.",
                hint="Pass the sample variance (the square of the standard deviation).",
            )
        object.__setattr__(self, "variance", variance if self.n >= 2 else 0.0)
        if self.n == 0:
            object.__setattr__(self, "mean", 0.0)

    @property
    def std(self) -> float:
        """The sample standard deviation (``ddof=1``)."""
        return math.sqrt(self.variance)

    @classmethod
    def from_values(cls, values: Iterable[Any] | np.ndarray) -> NumericSummary:
        """Summarise a vector of numbers (float64 arithmetic).

        Raises:
            InvalidArgument: the values are not one-dimensional or contain NaN/inf.
        """
        array = as_1d_array(values, "values")
        n = int(array.size)
        if n == 0:
            return cls(n=0, mean=0.0, variance=0.0)
        variance = float(np.var(array, ddof=1)) if n >= 2 else 0.0
        return cls(n=n, mean=float(np.mean(array)), variance=variance)

    def merge(self, other: NumericSummary) -> NumericSummary:
        """The summary of both samples together (Chan et al.'s parallel update of Welford's sums).

        Exact up to rounding: merging the summaries of two chunks gives the summary of the
        concatenated values.
        """
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = (
            self.variance * (self.n - 1)
            + other.variance * (other.n - 1)
            + delta * delta * self.n * other.n / n
        )
        return NumericSummary(n=n, mean=mean, variance=m2 / (n - 1))


Summary = BinarySummary | NumericSummary
