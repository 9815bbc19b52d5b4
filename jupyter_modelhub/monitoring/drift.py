"""The drift engine: compare a current window with the reference profile, feature by feature.

:func:`compute_drift` returns a :class:`~jupyter_modelhub.monitoring.records.DriftReport`.

**Default tests** follow Evidently's rules, by column type and sample size:

======================================  ==========================  ==========================
column                                  smaller sample <= 1000      both samples > 1000
======================================  ==========================  ==========================
numerical, more than 5 distinct values  ``ks`` (p < 0.05)           ``wasserstein`` (>= 0.1)
numerical with <= 5 values, categorical ``chisquare`` (p < 0.05)    ``jensenshannon`` (>= 0.1)
======================================  ==========================  ==========================

One deliberate difference: Evidently looks at the reference size only; we look at the smaller
of the reference and the current window (finite or present values of the column). A distance
between a 200-row window and its own distribution is far from 0 (the normalised Wasserstein
distance of 500 uniform rows against 2,000 reached 0.16 in a test, above the 0.1 threshold),
so a small window gets a p-value test, which knows its sample size. The distinct-value count is
the reference's. KS p-values are exact (scipy's) when neither sample exceeds 10,000 values and
asymptotic above, as ``scipy.stats.ks_2samp`` does by default (``ks_method="asymp"``: always
asymptotic).

Any test can be chosen for every column (``DriftOptions.test``; a numerical-only test given
globally applies to the numerical columns only) or per column (``DriftOptions.column_tests``).
``psi`` (>= 0.1), ``jensenshannon`` and ``chisquare`` also run on numerical columns, on the
profile's shared bins. Thresholds: ``DriftOptions.threshold`` for all, ``column_thresholds`` per
column; for p-value tests the threshold is the significance level.

**Multiple testing.** The p-values of all p-value tests in one report are adjusted together:
Benjamini-Hochberg by default (controls the false discovery rate: with many features of pure
noise the expected share of false flags stays under the level), Bonferroni (controls the chance
of any false flag; stricter) or none. ``p_value_adjusted`` is compared with the threshold.

**Large samples.** With hundreds of thousands of rows a p-value test finds "significant" shifts
too small to matter (the complaint about Evidently's KS on big data). So a p-value test flags a
feature only if the adjusted p-value is below the threshold **and** the effect size reaches a
minimum: the Wasserstein distance in reference standard deviations >= ``min_effect_numerical``
(0.05: a twentieth of a standard deviation) for numerical features, the Jensen-Shannon distance
>= ``min_effect_categorical`` (0.02: a 50/50 binary column must move by about 3 points) for
categorical ones. Small windows are unaffected (a shift KS can detect at n = 1000 is far larger
than the minimum). Set both to 0 for the plain p-value rule. Distance tests (``wasserstein``,
``jensenshannon``, ``psi``) do not depend on the sample size and use their threshold only.

**Dataset drift**: the share of compared features that drifted; the dataset drifted when the
share reaches ``drift_share`` (0.5, Evidently's default).

**Bad input.** Missing columns, an empty window, a column whose kind or value type differs from
the reference: :class:`~jupyter_modelhub.errors.InvalidArgument` naming the problem and the fix.
NaN, infinities and missing categories are dropped from both samples and counted
(``n_dropped``); a column left with no value in the window is reported with statistic NaN,
``drifted=False`` and a note. A constant reference column is normalised with Evidently's floor
(standard deviation 0.001) and noted; a single category on both sides compares as "no drift"
(chi-square 0, p = 1). Columns unusable in the reference are listed in ``skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring import drift_tests
from jupyter_modelhub.monitoring.columns import (
    CATEGORICAL,
    NUMERICAL,
    CategoricalColumn,
    Column,
    NumericalColumn,
    categorical_from_numbers,
    read_columns,
)
from jupyter_modelhub.monitoring.profile import (
    CategoricalProfile,
    ColumnProfile,
    NumericalProfile,
    ReferenceProfile,
    bin_counts,
    build_profile,
    finite_sorted,
)
from jupyter_modelhub.monitoring.records import DriftReport, FeatureDrift, Histogram, drift_order

TESTS = ("ks", "wasserstein", "psi", "jensenshannon", "chisquare")
P_VALUE_TESTS = frozenset({"ks", "chisquare"})
NUMERICAL_ONLY_TESTS = frozenset({"ks", "wasserstein"})
DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chisquare": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
CORRECTIONS = ("bh", "bonferroni", "none")
SMALL_REFERENCE = 1000  # Evidently: p-value tests up to this many reference values
LOW_CARDINALITY = 5  # Evidently: numerical columns with this few values are tested as categories


@dataclass(frozen=True)
class DriftOptions:
    """How to compare; every field has Evidently-like defaults (see the module docstring).

    Attributes:
        test: one test for every column it applies to (None: defaults by type and size).
        column_tests: ``{column: test}``; wins over ``test``.
        threshold: one threshold for every column (None: the test's default).
        column_thresholds: ``{column: threshold}``; wins over ``threshold``.
        correction: "bh" (Benjamini-Hochberg, default), "bonferroni" or "none".
        min_effect_numerical: minimum normalised Wasserstein distance for a p-value test to flag.
        min_effect_categorical: minimum Jensen-Shannon distance for a p-value test to flag.
        drift_share: share of drifted features from which the dataset counts as drifted.
        ks_method: "auto" (exact p-values up to 10,000 values per sample, as scipy) or "asymp".
        columns: compare only these columns (None: every column of the profile).
        column_types: ``{column: "numerical" | "categorical"}`` dtype overrides.
        histograms: attach reference/current counts per shared bin to each feature.
    """

    test: str | None = None
    column_tests: Mapping[str, str] = field(default_factory=dict)
    threshold: float | None = None
    column_thresholds: Mapping[str, float] = field(default_factory=dict)
    correction: str = "bh"
    min_effect_numerical: float = 0.05
    min_effect_categorical: float = 0.02
    drift_share: float = 0.5
    ks_method: str = "auto"
    columns: Sequence[str] | None = None
    column_types: Mapping[str, str] = field(default_factory=dict)
    histograms: bool = True

    def __post_init__(self) -> None:
        for name in [self.test, *self.column_tests.values()]:
            if name is not None and name not in TESTS:
                raise InvalidArgument(
                    f"Unknown drift test {name!r}.", hint=f"Use one of: {', '.join(TESTS)}."
                )
        if self.correction not in CORRECTIONS:
            raise InvalidArgument(
                f"Unknown multiple-testing correction {self.correction!r}.",
                hint=f"Use one of: {', '.join(CORRECTIONS)}.",
            )
        for label, value in [("threshold", self.threshold), *self.column_thresholds.items()]:
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidArgument(
                    f"The drift threshold for {label} is {value!r}.",
                    hint="Use a positive number (a significance level or a distance).",
                )
        for label, value in [
            ("min_effect_numerical", self.min_effect_numerical),
            ("min_effect_categorical", self.min_effect_categorical),
        ]:
            if not (math.isfinite(value) and value >= 0):
                raise InvalidArgument(f"{label} is {value!r}.", hint="Use a number >= 0.")
        if self.ks_method not in ("auto", "asymp"):
            raise InvalidArgument(
                f"Unknown ks_method {self.ks_method!r}.", hint="Use 'auto' or 'asymp'."
            )
        if not 0 < self.drift_share <= 1:
            raise InvalidArgument(
                f"drift_share is {self.drift_share!r}.", hint="Use a share in (0, 1]."
            )
        if isinstance(self.columns, str):
            raise InvalidArgument(
                f"columns is the string {self.columns!r}.", hint="Pass a list of column names."
            )


def default_test(profile: ColumnProfile, n_current: int | None = None) -> str:
    """The default test for a reference column and a window of ``n_current`` values (see the
    module docstring; None: decide on the reference alone, as Evidently)."""
    low_cardinality = profile.kind == CATEGORICAL or profile.n_unique <= LOW_CARDINALITY
    smaller = profile.n if n_current is None else min(profile.n, n_current)
    if smaller <= SMALL_REFERENCE:
        return "chisquare" if low_cardinality else "ks"
    return "jensenshannon" if low_cardinality else "wasserstein"


def choose_test(profile: ColumnProfile, options: DriftOptions, n_current: int | None) -> str:
    """The test for a column: per-column choice, else the global one if it applies, else default."""
    chosen = options.column_tests.get(profile.name)
    if chosen is not None:
        if profile.kind == CATEGORICAL and chosen in NUMERICAL_ONLY_TESTS:
            raise InvalidArgument(
                f"The test {chosen!r} needs numbers but column {profile.name!r} is categorical.",
                hint="Use 'chisquare', 'jensenshannon' or 'psi' for categorical columns.",
            )
        return chosen
    if options.test is not None and not (
        profile.kind == CATEGORICAL and options.test in NUMERICAL_ONLY_TESTS
    ):
        return options.test
    return default_test(profile, n_current)


def compute_drift(
    reference: ReferenceProfile | Any,
    current: Any,
    options: DriftOptions | None = None,
) -> DriftReport:
    """Compare ``current`` with the reference; see the module docstring for the rules.

    Args:
        reference: a :class:`ReferenceProfile` (built once, cheap), or the reference data itself
            (a DataFrame, pyarrow Table or dict of arrays), profiled on the fly.
        current: the window to check, in any of those containers.
        options: tests, thresholds, correction, columns; defaults as Evidently.

    Raises:
        InvalidArgument: see "Bad input" in the module docstring.
    """
    options = options or DriftOptions()
    profile = as_profile(reference, options)
    window = read_current(profile, current, options)
    return compare_window(profile, window, options)


def as_profile(reference: ReferenceProfile | Any, options: DriftOptions) -> ReferenceProfile:
    """The reference as a profile (built on the fly from raw data)."""
    if isinstance(reference, ReferenceProfile):
        return reference
    return build_profile(reference, column_types=options.column_types)


@dataclass(frozen=True, eq=False)
class AlignedCategories:
    """A current categorical column recoded into the reference's category order."""

    name: str
    codes: np.ndarray  # index into ``labels``; -1 missing
    labels: tuple[str, ...]  # the reference's categories, then new ones


Prepared = NumericalColumn | AlignedCategories


@dataclass(frozen=True, eq=False)
class CurrentWindow:
    """The current data, read and checked against the profile, ready to compare."""

    columns: Mapping[str, Prepared]
    n_rows: int
    ignored: tuple[str, ...]  # current columns the reference does not have

    def rows(self, start: int, stop: int) -> CurrentWindow:
        """The rows ``start:stop`` (views, no copy)."""
        sliced: dict[str, Prepared] = {}
        for name, column in self.columns.items():
            if isinstance(column, NumericalColumn):
                sliced[name] = NumericalColumn(name, column.values[start:stop], column.value_type)
            else:
                sliced[name] = AlignedCategories(name, column.codes[start:stop], column.labels)
        return CurrentWindow(sliced, max(0, min(stop, self.n_rows) - start), self.ignored)

    def take(self, order: np.ndarray) -> CurrentWindow:
        """The rows in ``order`` (a copy)."""
        taken: dict[str, Prepared] = {}
        for name, column in self.columns.items():
            if isinstance(column, NumericalColumn):
                taken[name] = NumericalColumn(name, column.values[order], column.value_type)
            else:
                taken[name] = AlignedCategories(name, column.codes[order], column.labels)
        return CurrentWindow(taken, order.size, self.ignored)


def read_current(
    profile: ReferenceProfile, current: Any, options: DriftOptions, *, allow_empty: bool = False
) -> CurrentWindow:
    """Read the window, check it against the profile and recode its categories."""
    columns = read_columns(current, role="current", column_types=options.column_types)
    wanted = list(profile.names if options.columns is None else options.columns)
    unknown = [c for c in wanted if c not in profile.columns and c not in profile.skipped]
    if unknown:
        raise InvalidArgument(
            f"The reference profile has no column {', '.join(map(repr, unknown))}.",
            hint=f"Compare columns among: {', '.join(profile.names)}.",
        )
    wanted = [c for c in wanted if c in profile.columns]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InvalidArgument(
            f"The current data lacks column(s) {', '.join(map(repr, missing))} of the reference.",
            hint="Add them, or restrict the comparison with DriftOptions(columns=[...]).",
        )
    if not wanted:
        raise InvalidArgument(
            "There is no column to compare.",
            hint="Pass a reference and a window with common, usable columns.",
        )
    first = columns[wanted[0]]
    n_rows = len(first.values) if isinstance(first, NumericalColumn) else len(first.codes)
    if n_rows == 0 and not allow_empty:
        raise InvalidArgument(
            "The current window is empty (0 rows).",
            hint="Widen the window (a longer --window or an earlier --since) "
            "or check that predictions are being logged.",
        )
    ignored = tuple(c for c in columns if c not in profile.columns and c not in profile.skipped)
    return CurrentWindow(
        {name: _prepare(profile[name], columns[name]) for name in wanted}, n_rows, ignored
    )


def _prepare(ref: ColumnProfile, column: Column) -> Prepared:
    if isinstance(ref, NumericalProfile):
        if isinstance(column, CategoricalColumn):
            raise InvalidArgument(
                f"Column {ref.name!r} is numerical in the reference but holds "
                f"{column.value_type} categories in the current data.",
                hint="Send the same dtype as at registration (convert the column to numbers), "
                "or rebuild the profile with column_types.",
            )
        return column
    if isinstance(column, NumericalColumn):
        if ref.value_type == "string":
            raise InvalidArgument(
                f"Column {ref.name!r} holds text categories in the reference but numbers "
                "in the current data.",
                hint="Send the same dtype as at registration (convert the numbers to labels).",
            )
        column = categorical_from_numbers(column.name, column.values)
    text = {"string"}
    if (ref.value_type in text) != (column.value_type in text) and "mixed" not in (
        ref.value_type,
        column.value_type,
    ):
        raise InvalidArgument(
            f"Column {ref.name!r} holds {ref.value_type} categories in the reference but "
            f"{column.value_type} values in the current data.",
            hint="Send the same dtype as at registration.",
        )
    return align_categories(ref, column)


def align_categories(ref: CategoricalProfile, column: CategoricalColumn) -> AlignedCategories:
    """Recode ``column`` so that codes index the reference categories (new ones appended)."""
    position = {label: i for i, label in enumerate(ref.categories)}
    labels = list(ref.categories)
    mapping = np.empty(len(column.categories), dtype=np.int64)
    for i, label in enumerate(column.categories):  # per category, not per row
        if label not in position:
            position[label] = len(labels)
            labels.append(label)
        mapping[i] = position[label]
    codes = column.codes
    recoded = np.where(codes >= 0, mapping[np.maximum(codes, 0)], -1) if mapping.size else codes
    return AlignedCategories(column.name, recoded, tuple(labels))


@dataclass
class _Partial:
    """A feature's figures before the report-wide correction."""

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    effect_size: float
    effect_measure: str
    threshold: float
    min_effect: float | None
    n_reference: int
    n_current: int
    n_dropped: int
    note: str
    histogram: Histogram | None


def compare_window(
    profile: ReferenceProfile, window: CurrentWindow, options: DriftOptions
) -> DriftReport:
    """The report for a window already read and checked by :func:`read_current`."""
    partials = [
        _compare_one(profile[name], column, options) for name, column in window.columns.items()
    ]
    # KS p-values for all columns in one vectorised call
    ks = [p for p in partials if p.test == "ks" and math.isfinite(p.statistic)]
    if ks:
        pvalues = drift_tests.ks_pvalue(
            np.array([p.statistic for p in ks]),
            np.array([p.n_reference for p in ks]),
            np.array([p.n_current for p in ks]),
        )
        for p, value in zip(ks, pvalues.tolist(), strict=True):
            exact = None
            if options.ks_method == "auto" and max(p.n_reference, p.n_current) <= (
                drift_tests.EXACT_KS_LIMIT
            ):
                exact = drift_tests.ks_pvalue_exact(p.statistic, p.n_reference, p.n_current)
            p.p_value = value if exact is None else exact
    tested = [p for p in partials if p.p_value is not None]
    adjusted = adjust_pvalues(np.array([p.p_value for p in tested]), options.correction)
    adjusted_of = {id(p): float(a) for p, a in zip(tested, adjusted.tolist(), strict=True)}
    features = []
    for p in partials:
        p_adj = adjusted_of.get(id(p))
        if not math.isfinite(p.statistic):
            drifted = False
        elif p_adj is None:
            drifted = p.statistic >= p.threshold
        else:
            drifted = p_adj < p.threshold and p.effect_size >= (p.min_effect or 0.0)
        features.append(
            FeatureDrift(
                column=p.column,
                kind=p.kind,  # type: ignore[arg-type]
                test=p.test,
                statistic=p.statistic,
                p_value=p.p_value,
                p_value_adjusted=p_adj,
                effect_size=p.effect_size,
                effect_measure=p.effect_measure,
                threshold=p.threshold,
                min_effect=p.min_effect,
                drifted=bool(drifted),
                n_reference=p.n_reference,
                n_current=p.n_current,
                n_dropped=p.n_dropped,
                note=p.note,
                histogram=p.histogram,
            )
        )
    features.sort(key=drift_order)
    n_drifted = sum(f.drifted for f in features)
    share = n_drifted / len(features) if features else 0.0
    return DriftReport(
        features=tuple(features),
        n_reference=profile.n_rows,
        n_current=window.n_rows,
        correction=options.correction,
        drift_share=share,
        drift_share_threshold=options.drift_share,
        dataset_drift=bool(features) and share >= options.drift_share,
        skipped=dict(profile.skipped),
        ignored_columns=window.ignored,
    )


def adjust_pvalues(pvalues: np.ndarray, correction: str) -> np.ndarray:
    """Adjusted p-values: Benjamini-Hochberg ("bh"), Bonferroni, or unchanged ("none")."""
    k = pvalues.size
    if k == 0 or correction == "none":
        return pvalues.astype(np.float64)
    if correction == "bonferroni":
        return np.minimum(pvalues * k, 1.0)
    order = np.argsort(pvalues)
    scaled = pvalues[order] * k / np.arange(1, k + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]  # step-up: monotone from the largest
    adjusted = np.empty(k)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _threshold(column: str, test: str, options: DriftOptions) -> float:
    value = options.column_thresholds.get(column, options.threshold)
    return DEFAULT_THRESHOLDS[test] if value is None else float(value)


def _compare_one(ref: ColumnProfile, column: Prepared, options: DriftOptions) -> _Partial:
    if isinstance(ref, NumericalProfile):
        assert isinstance(column, NumericalColumn)
        return _numerical(ref, column, options)
    assert isinstance(column, AlignedCategories)
    return _categorical(ref, column, options)


def _numerical(ref: NumericalProfile, column: NumericalColumn, options: DriftOptions) -> _Partial:
    cur, n_nan, n_inf = finite_sorted(column.values)
    m = cur.size
    test = choose_test(ref, options, m)
    threshold = _threshold(ref.name, test, options)
    cur_counts = bin_counts(cur, ref.edges)
    notes = []
    if ref.n_unique == 1:
        notes.append(
            f"constant in the reference (all {ref.minimum:g}); Wasserstein is divided by "
            f"{drift_tests.STD_FLOOR} instead of a standard deviation"
        )
    histogram = (
        Histogram(
            kind=NUMERICAL,
            edges=tuple(ref.edges.tolist()),
            labels=(),
            reference=tuple(ref.counts.tolist()),
            current=tuple(cur_counts.tolist()),
            discrete=ref.discrete,
        )
        if options.histograms
        else None
    )
    partial = _Partial(
        column=ref.name,
        kind=NUMERICAL,
        test=test,
        statistic=math.nan,
        p_value=None,
        effect_size=math.nan,
        effect_measure="wasserstein_norm",
        threshold=threshold,
        min_effect=options.min_effect_numerical if test in P_VALUE_TESTS else None,
        n_reference=ref.n,
        n_current=m,
        n_dropped=n_nan + n_inf,
        note="",
        histogram=histogram,
    )
    if m == 0:
        notes.append(f"no finite value in the current window ({n_nan} NaN, {n_inf} infinite)")
        partial.note = "; ".join(notes)
        return partial
    effect = drift_tests.normalised_wasserstein(drift_tests.wasserstein(ref.values, cur), ref.std)
    partial.effect_size = effect
    if test == "wasserstein":
        partial.statistic = effect
    elif test == "ks":
        partial.statistic = drift_tests.ks_statistic(ref.values, cur)  # p-value: vectorised later
    else:
        partial.statistic, partial.p_value = _binned(test, ref.counts, cur_counts)
    partial.note = "; ".join(notes)
    return partial


def _binned(test: str, ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, Any]:
    if test == "psi":
        return drift_tests.psi(ref_counts, cur_counts), None
    if test == "jensenshannon":
        return drift_tests.jensen_shannon(ref_counts, cur_counts), None
    statistic, p_value = drift_tests.chi_square(ref_counts, cur_counts)
    return statistic, p_value


def _categorical(
    ref: CategoricalProfile, column: AlignedCategories, options: DriftOptions
) -> _Partial:
    codes = column.codes
    present = codes[codes >= 0]
    cur_counts = np.bincount(present, minlength=len(column.labels)).astype(np.int64)
    ref_counts = np.zeros(len(column.labels), dtype=np.int64)
    ref_counts[: ref.counts.size] = ref.counts
    m = int(present.size)
    test = choose_test(ref, options, m)
    threshold = _threshold(ref.name, test, options)
    n_missing = int(codes.size - m)
    # show only the categories seen on either side
    seen = (ref_counts > 0) | (cur_counts > 0)
    histogram = (
        Histogram(
            kind=CATEGORICAL,
            edges=(),
            labels=tuple(label for label, s in zip(column.labels, seen, strict=True) if s),
            reference=tuple(ref_counts[seen].tolist()),
            current=tuple(cur_counts[seen].tolist()),
        )
        if options.histograms
        else None
    )
    partial = _Partial(
        column=ref.name,
        kind=CATEGORICAL,
        test=test,
        statistic=math.nan,
        p_value=None,
        effect_size=math.nan,
        effect_measure="jensenshannon",
        threshold=threshold,
        min_effect=options.min_effect_categorical if test in P_VALUE_TESTS else None,
        n_reference=ref.n,
        n_current=m,
        n_dropped=n_missing,
        note="",
        histogram=histogram,
    )
    if m == 0:
        partial.note = f"no value in the current window ({n_missing} missing)"
        return partial
    if np.count_nonzero(seen) == 1:
        partial.note = "a single category on both sides: nothing to compare"
    partial.effect_size = drift_tests.jensen_shannon(ref_counts, cur_counts)
    partial.statistic, partial.p_value = _binned(test, ref_counts, cur_counts)
    return partial


def output_drift(
    reference: ReferenceProfile | Any,
    predictions: Any,
    *,
    column: str = "prediction",
    options: DriftOptions | None = None,
) -> FeatureDrift:
    """Drift of the model's output: the same engine on one prediction column.

    Args:
        reference: a profile (or reference data) that includes the reference predictions as
            ``column``.
        predictions: the current predictions: a 1-D array/Series/list, or a table with ``column``.
        column: the prediction column's name in the profile.
        options: as for :func:`compute_drift`; ``columns`` is replaced by ``[column]``.
    """
    options = options or DriftOptions()
    profile = as_profile(reference, options)
    if column not in profile.columns:
        raise InvalidArgument(
            f"The reference profile has no prediction column {column!r}.",
            hint="Include the model's predictions on the reference data as that column when "
            "building the profile, or pass column=<its name>.",
        )
    if not (
        isinstance(predictions, Mapping)
        or hasattr(predictions, "columns")
        or hasattr(predictions, "column_names")
    ):
        predictions = {column: predictions}
    report = compute_drift(profile, predictions, replace(options, columns=[column]))
    return report.feature(column)
