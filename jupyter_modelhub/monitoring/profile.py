"""The reference profile: what the drift engine keeps of the reference data, computed once.

A profile is built at registration (:func:`build_profile`), stored next to the reference
(:meth:`ReferenceProfile.save`, one ``.npz`` file) and loaded for every comparison
(:meth:`ReferenceProfile.load`), so a window never pays for the reference again.

Per numerical column it keeps:

* the **sorted finite values** (KS and Wasserstein are exact), or, for a column with more than
  ``exact_limit`` finite values (default 100,000), a **quantile sketch** of ``sketch_size``
  (default 10,000) order statistics taken at the mid-points of equal-mass slices. The sketch's
  ECDF is within ``1 / sketch_size`` of the true one everywhere, so the KS statistic is off by at
  most about ``1e-4`` at the default size (against a 5% critical value of ``0.0043`` for two
  samples of 200,000 rows), and the KS p-value still uses the true row count. The Wasserstein
  distance is the distance to the sketch's distribution; it differs from the exact one by the
  within-slice spread (negligible except in the extreme tails of heavy-tailed columns). Mean,
  standard deviation, minimum, maximum and the distinct-value count are exact either way;
* **fixed bins** shared by PSI, Jensen-Shannon, chi-square (on numbers) and histograms. A column
  with at most :data:`DISCRETE_LIMIT` distinct values gets one bin per value (and empty bins
  between them, so an unseen value in a window lands in a bin the reference never filled);
  others get ``n_bins`` (default 20) bins of equal reference mass, cut at reference quantiles.
  Bin ``b`` holds ``edges[b - 1] <= x < edges[b]``; the first and last bins are open-ended;
* the reference **counts** per bin, the number of NaN and of infinite values (dropped).

Per categorical column it keeps the labels and their counts, and the number of missing values.

A reference column with no finite or present value at all cannot serve as a reference: it is
left out of the profile and listed in :attr:`ReferenceProfile.skipped` with the reason.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.monitoring.columns import (
    CATEGORICAL,
    NUMERICAL,
    CategoricalColumn,
    ColumnKind,
    NumericalColumn,
    read_columns,
)

FORMAT_VERSION = 1
DISCRETE_LIMIT = 20  # at most this many distinct values: one bin per value
DEFAULT_BINS = 20
DEFAULT_EXACT_LIMIT = 100_000
DEFAULT_SKETCH_SIZE = 10_000


@dataclass(frozen=True, eq=False)
class NumericalProfile:
    """What the engine keeps of one numerical reference column."""

    name: str
    value_type: str
    n: int  # finite values (the sample size of every test)
    n_nan: int
    n_inf: int
    mean: float
    std: float  # population standard deviation (ddof=0), as Evidently normalises Wasserstein
    minimum: float
    maximum: float
    n_unique: int
    values: np.ndarray  # sorted finite values, or the quantile sketch when ``exact`` is False
    exact: bool
    edges: np.ndarray  # inner bin edges, non-decreasing
    counts: np.ndarray  # reference rows per bin, len(edges) + 1
    discrete: bool  # one bin per distinct value
    kind: ColumnKind = NUMERICAL

    @property
    def n_dropped(self) -> int:
        return self.n_nan + self.n_inf


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """What the engine keeps of one categorical reference column."""

    name: str
    value_type: str
    categories: tuple[str, ...]
    counts: np.ndarray  # rows per category
    n_missing: int
    kind: ColumnKind = CATEGORICAL

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def n_unique(self) -> int:
        return int(np.count_nonzero(self.counts))

    @property
    def n_dropped(self) -> int:
        return self.n_missing


ColumnProfile = NumericalProfile | CategoricalProfile


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """The reference side of every drift comparison; see the module docstring."""

    n_rows: int
    columns: Mapping[str, ColumnProfile]
    skipped: Mapping[str, str] = field(default_factory=dict)
    n_bins: int = DEFAULT_BINS
    exact_limit: int = DEFAULT_EXACT_LIMIT
    sketch_size: int = DEFAULT_SKETCH_SIZE

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidArgument(
                f"The reference profile has no column {name!r} "
                f"(it has {', '.join(map(repr, self.columns)) or 'none'}).",
                hint="Rebuild the profile from a reference that includes it.",
            ) from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile to one ``.npz`` file (atomically); returns the path."""
        return save_profile(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by :meth:`save`."""
        return load_profile(path)


def build_profile(
    reference: Any,
    *,
    n_bins: int = DEFAULT_BINS,
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    sketch_size: int = DEFAULT_SKETCH_SIZE,
    column_types: Mapping[str, str] | None = None,
) -> ReferenceProfile:
    """Profile the reference data once (at registration), for cheap comparisons later.

    Args:
        reference: a pandas DataFrame, a pyarrow Table or a dict of column name to 1-D array.
        n_bins: bins of equal reference mass for continuous numerical columns (2..1000).
        exact_limit: keep every sorted value up to this many finite values per column;
            above it keep a quantile sketch of ``sketch_size`` values.
        sketch_size: size of the quantile sketch (100..10,000,000).
        column_types: ``{column: "numerical" | "categorical"}`` to override dtype inference.

    Raises:
        InvalidArgument: an empty reference, an unsupported dtype, bad parameters.
    """
    if not 2 <= n_bins <= 1000:
        raise InvalidArgument(f"n_bins is {n_bins}.", hint="Use between 2 and 1000 bins.")
    if not 100 <= sketch_size <= 10_000_000:
        raise InvalidArgument(
            f"sketch_size is {sketch_size}.", hint="Use between 100 and 10,000,000."
        )
    if exact_limit < sketch_size:
        raise InvalidArgument(
            f"exact_limit ({exact_limit}) is below sketch_size ({sketch_size}).",
            hint="A sketch only pays for columns larger than itself: raise exact_limit.",
        )
    columns = read_columns(reference, role="reference", column_types=column_types)
    if not columns:
        raise InvalidArgument("The reference data has no columns.", hint="Pass a non-empty table.")
    n_rows = _n_rows(columns)
    if n_rows == 0:
        raise InvalidArgument(
            "The reference data has no rows.", hint="Profile the data the model was trained on."
        )
    profiles: dict[str, ColumnProfile] = {}
    skipped: dict[str, str] = {}
    for name, column in columns.items():
        if isinstance(column, NumericalColumn):
            profile: ColumnProfile | str = _numerical(column, n_bins, exact_limit, sketch_size)
        else:
            profile = _categorical(column)
        if isinstance(profile, str):
            skipped[name] = profile
        else:
            profiles[name] = profile
    return ReferenceProfile(
        n_rows=n_rows,
        columns=profiles,
        skipped=skipped,
        n_bins=n_bins,
        exact_limit=exact_limit,
        sketch_size=sketch_size,
    )


def _n_rows(columns: Mapping[str, NumericalColumn | CategoricalColumn]) -> int:
    for column in columns.values():
        return len(column.values) if isinstance(column, NumericalColumn) else len(column.codes)
    return 0


def finite_sorted(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The finite values sorted, and the counts of NaN and of infinities dropped."""
    finite = np.isfinite(values)
    if finite.all():
        return np.sort(values), 0, 0
    n_nan = int(np.count_nonzero(np.isnan(values)))
    n_inf = int(values.size - np.count_nonzero(finite) - n_nan)
    return np.sort(values[finite]), n_nan, n_inf


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Rows per bin (``edges[b-1] <= x < edges[b]``) of already sorted values."""
    below = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(below, prepend=0, append=sorted_values.size).astype(np.int64)


def _numerical(
    column: NumericalColumn, n_bins: int, exact_limit: int, sketch_size: int
) -> NumericalProfile | str:
    xs, n_nan, n_inf = finite_sorted(column.values)
    n = xs.size
    if n == 0:
        return f"no finite value in the reference ({n_nan} NaN, {n_inf} infinite)"
    ends = np.flatnonzero(xs[1:] != xs[:-1])
    n_unique = ends.size + 1
    if n_unique <= DISCRETE_LIMIT:
        distinct = np.append(xs[ends], xs[-1])
        # [v, next float after v) holds exactly v; the bins between hold unseen values
        edges = np.empty(2 * n_unique)
        edges[0::2] = distinct
        edges[1::2] = np.nextafter(distinct, np.inf)
        discrete = True
    else:
        edges = np.unique(sorted_quantiles(xs, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
        discrete = False
    exact = n <= exact_limit
    values = xs if exact else sketch(xs, sketch_size)
    return NumericalProfile(
        name=column.name,
        value_type=column.value_type,
        n=n,
        n_nan=n_nan,
        n_inf=n_inf,
        mean=float(xs.mean()),
        std=float(xs.std()),
        minimum=float(xs[0]),
        maximum=float(xs[-1]),
        n_unique=n_unique,
        values=values,
        exact=exact,
        edges=edges,
        counts=bin_counts(xs, edges),
        discrete=discrete,
    )


def sorted_quantiles(sorted_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile(values, levels)`` (linear method) of already sorted values, without a
    partition pass."""
    position = levels * (sorted_values.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, sorted_values.size - 1)
    low, high = sorted_values[below], sorted_values[above]
    return low + (position - below) * (high - low)


def sketch(sorted_values: np.ndarray, size: int) -> np.ndarray:
    """``size`` order statistics at the mid-points of equal-mass slices of sorted values."""
    n = sorted_values.size
    index = ((np.arange(size) + 0.5) * n / size).astype(np.int64)
    return np.ascontiguousarray(sorted_values[np.minimum(index, n - 1)])


def _categorical(column: CategoricalColumn) -> CategoricalProfile | str:
    counts = column.counts()
    n_missing = column.n_missing
    if counts.sum() == 0:
        return f"no value in the reference ({n_missing} missing)"
    keep = np.flatnonzero(counts > 0)
    keep = keep[np.argsort(np.array([column.categories[i] for i in keep], dtype=object))]
    return CategoricalProfile(
        name=column.name,
        value_type=column.value_type,
        categories=tuple(column.categories[i] for i in keep),  # sorted labels
        counts=counts[keep],
        n_missing=n_missing,
    )


# -- storage -------------------------------------------------------------------------------------
_NUMERICAL_FIELDS: tuple[str, ...] = (
    *("value_type", "n", "n_nan", "n_inf", "mean", "std", "minimum", "maximum"),
    *("n_unique", "exact", "discrete"),
)


def save_profile(profile: ReferenceProfile, path: str | os.PathLike[str]) -> Path:
    """Write ``profile`` to ``path`` as one ``.npz`` file (JSON metadata + arrays), atomically."""
    target = Path(path)
    arrays: dict[str, np.ndarray] = {}
    columns: list[dict[str, Any]] = []
    for i, (name, col) in enumerate(profile.columns.items()):
        if isinstance(col, NumericalProfile):
            meta: dict[str, Any] = {"name": name, "kind": NUMERICAL}
            meta.update({f: getattr(col, f) for f in _NUMERICAL_FIELDS})
            arrays[f"c{i}_values"] = col.values
            arrays[f"c{i}_edges"] = col.edges
        else:
            meta = {
                "name": name,
                "kind": CATEGORICAL,
                "value_type": col.value_type,
                "categories": list(col.categories),
                "n_missing": col.n_missing,
            }
        arrays[f"c{i}_counts"] = col.counts
        columns.append(meta)
    header = {
        "format": "jupyter-modelhub drift profile",
        "version": FORMAT_VERSION,
        "n_rows": profile.n_rows,
        "n_bins": profile.n_bins,
        "exact_limit": profile.exact_limit,
        "sketch_size": profile.sketch_size,
        "skipped": dict(profile.skipped),
        "columns": columns,
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".profile-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_profile(path: str | os.PathLike[str]) -> ReferenceProfile:
    """Read a profile written by :func:`save_profile`.

    Raises:
        InvalidArgument: the file is missing or is not a drift profile of a known version.
    """
    source = Path(path)
    try:
        archive = np.load(source, allow_pickle=False)
    except FileNotFoundError:
        raise InvalidArgument(
            f"No drift profile at {source}.", hint="Build one with build_profile(reference)."
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidArgument(
            f"{source} is not a drift profile ({exc}).",
            hint="Rebuild it with build_profile(reference).save(path).",
        ) from None
    with archive:
        try:
            header = json.loads(archive["header"].tobytes())
        except (KeyError, ValueError):
            raise InvalidArgument(
                f"{source} is not a drift profile (no header).",
                hint="Rebuild it with build_profile(reference).save(path).",
            ) from None
        if header.get("version") != FORMAT_VERSION:
            raise InvalidArgument(
                f"{source} is a drift profile of format {header.get('version')!r}; "
                f"this version reads format {FORMAT_VERSION}.",
                hint="Rebuild it with build_profile(reference).save(path).",
            )
        columns: dict[str, ColumnProfile] = {}
        for i, meta in enumerate(header["columns"]):
            counts = archive[f"c{i}_counts"]
            if meta["kind"] == NUMERICAL:
                columns[meta["name"]] = NumericalProfile(
                    name=meta["name"],
                    values=archive[f"c{i}_values"],
                    edges=archive[f"c{i}_edges"],
                    counts=counts,
                    **{f: meta[f] for f in _NUMERICAL_FIELDS},
                )
            else:
                columns[meta["name"]] = CategoricalProfile(
                    name=meta["name"],
                    value_type=meta["value_type"],
                    categories=tuple(meta["categories"]),
                    counts=counts,
                    n_missing=meta["n_missing"],
                )
    return ReferenceProfile(
        n_rows=header["n_rows"],
        columns=columns,
        skipped=header["skipped"],
        n_bins=header["n_bins"],
        exact_limit=header["exact_limit"],
        sketch_size=header["sketch_size"],
    )
