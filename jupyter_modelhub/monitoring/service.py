"""The drift service: a registered version's reference against a deployment's logged requests.

:class:`DriftMonitor` is what ``Hub.drift…`` calls. It

* loads a version's reference profile from a cache (``<hub>/.modelhub/cache/profiles/``, keyed
  by the reference sample's md5, so two versions registered with the same sample share one),
  building it once from the stored sample on a miss; files are written atomically, so a crash
  leaves the old file or none, never half of one, and a damaged file is rebuilt;
* profiles the model's output too, when it can: the version's model predicts on its reference
  sample once (cached beside, keyed by the reference's and the artifact's md5);
* reads the deployment's prediction log for a time window with pyarrow (only the feature and
  prediction columns, only the rows the version answered) and runs the drift engine: a
  :class:`~jupyter_modelhub.monitoring.records.DriftReport`, the drift of ``prediction``, and,
  when asked, drift over time on sliding windows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from jupyter_modelhub.errors import InvalidArgument, NotFound
from jupyter_modelhub.models import ModelVersion, Record
from jupyter_modelhub.monitoring.drift import DriftOptions, compute_drift, output_drift
from jupyter_modelhub.monitoring.prediction_log import (
    PREDICTION,
    TimeRange,
    log_column,
    read_log_window,
    summarize_log,
    time_range,
    timestamps,
)
from jupyter_modelhub.monitoring.profile import ReferenceProfile, build_profile, load_profile
from jupyter_modelhub.monitoring.records import DriftReport, DriftTimeline, FeatureDrift
from jupyter_modelhub.monitoring.windows import drift_over_time
from jupyter_modelhub.registry.registry import RUNTIME_DIR, ModelRegistry

log = logging.getLogger(__name__)

PROFILE_CACHE = Path(RUNTIME_DIR) / "cache" / "profiles"
REGISTER_HINT = (
    "Register a version with a sample of its training features: "
    "`modelhub register MODEL --name NAME --reference train.parquet` "
    "(or hub.register(model, name, reference=X_train)), then deploy that version."
)


def predictions_folder(hub_root: str | os.PathLike[str], deployment: str) -> Path:
    """Where deployment ``deployment`` of the hub at ``hub_root`` logs its predictions (the
    layout of ``deploy.runtime.RuntimeFolder``)."""
    return Path(hub_root) / RUNTIME_DIR / "runtime" / "deployments" / deployment / "predictions"


class ProfileCache:
    """Reference profiles on disk, one ``.npz`` per key; writes are atomic (temp file + rename)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def get(self, key: str, build: Callable[[], ReferenceProfile]) -> ReferenceProfile:
        """The cached profile of ``key``, or ``build()`` stored under it.

        A file that cannot be read (damaged, from another format version) is rebuilt.
        """
        path = self.path(key)
        if path.exists():
            try:
                return load_profile(path)
            except InvalidArgument as exc:
                log.warning("Rebuilding the drift profile %s: %s", path.name, exc)
        profile = build()
        try:
            profile.save(path)
        except OSError as exc:  # a read-only hub still gets its report
            log.warning("Could not cache the drift profile %s: %s", path, exc)
        return profile


@dataclass(frozen=True)
class DeploymentDrift:
    """Drift of what a deployment was asked (and answered) in a window, against the reference.

    ``report`` compares the features; ``output`` the ``prediction`` column (None, with
    ``output_note`` saying why, when the version's model could not predict its reference);
    ``timeline`` is drift over sliding windows when asked for (``over_time``).
    """

    deployment: str
    ref: str
    window: TimeRange
    n_rows: int
    first: dt.datetime | None
    last: dt.datetime | None
    report: DriftReport
    output: FeatureDrift | None = None
    output_note: str = ""
    timeline: DriftTimeline | None = None

    def to_dict(self, *, histograms: bool = True) -> dict[str, Any]:
        def iso(moment: dt.datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "deployment": self.deployment,
            "ref": self.ref,
            "window": {"start": iso(self.window.start), "end": iso(self.window.end)},
            "n_rows": self.n_rows,
            "first": iso(self.first),
            "last": iso(self.last),
            "report": self.report.to_dict(histograms=histograms),
            "output": None if self.output is None else self.output.to_dict(histogram=histograms),
            "output_note": self.output_note,
            "timeline": None if self.timeline is None else self.timeline.to_dict(),
        }


@dataclass(frozen=True)
class DriftSummary(Record):
    """A deployment's dataset-level drift verdict, small enough for a badge that polls it.

    ``state`` is ``drift``, ``ok`` or ``no_data`` (nothing logged in the window, or the served
    version has no reference data: ``message`` says which).
    """

    deployment: str
    ref: str
    state: str
    message: str
    n_rows: int = 0
    n_features: int = 0
    n_drifted: int = 0
    drift_share: float | None = None
    drift_share_threshold: float | None = None

    @classmethod
    def of(cls, drift: DeploymentDrift) -> DriftSummary:
        report = drift.report
        return cls(
            deployment=drift.deployment,
            ref=drift.ref,
            state="drift" if report.dataset_drift else "ok",
            message=f"{report.n_drifted} of {report.n_features} features drifted "
            f"over {drift.n_rows:,} requests",
            n_rows=drift.n_rows,
            n_features=report.n_features,
            n_drifted=report.n_drifted,
            drift_share=report.drift_share,
            drift_share_threshold=report.drift_share_threshold,
        )


class DriftMonitor:
    """Drift of registered versions: reference profiles (cached) against new data.

    Args:
        registry: the hub's registry (where versions and their reference samples live).
        cache: where profiles are cached (default ``<hub>/.modelhub/cache/profiles``).
    """

    def __init__(
        self, registry: ModelRegistry, *, cache: str | os.PathLike[str] | None = None
    ) -> None:
        self.registry = registry
        self.cache = ProfileCache(cache if cache is not None else registry.root / PROFILE_CACHE)

    # -- profiles --------------------------------------------------------------------------------
    def _version(self, ref: str) -> ModelVersion:
        version = self.registry.show(ref)
        if version.meta.reference is None:
            raise NotFound(
                f"{version.ref} has no reference data to compare with.", hint=REGISTER_HINT
            )
        return version

    def profile(self, ref: str) -> ReferenceProfile:
        """The reference profile of version ``ref`` (features as the prediction log names them).

        Raises:
            NotFound: the version does not exist, or was registered without reference data.
        """
        version = self._version(ref)
        assert version.meta.reference is not None
        md5 = version.meta.reference.stored.md5

        def build() -> ReferenceProfile:
            frame = self.registry.reference_data(version.ref)
            return build_profile({log_column(str(c)): frame[c].to_numpy() for c in frame.columns})

        return self.cache.get(md5, build)

    def output_profile(self, ref: str) -> ReferenceProfile:
        """A profile of the version's predictions on its own reference sample.

        Raises:
            NotFound: no reference data.
            InvalidArgument: the model cannot predict here (no ``predict``, or it failed).
        """
        version = self._version(ref)
        assert version.meta.reference is not None
        key = f"{version.meta.reference.stored.md5}-output-{version.meta.artifact.md5}"
        key = key.replace(".dir", "")

        def build() -> ReferenceProfile:
            predictions = self._reference_predictions(version)
            return build_profile({PREDICTION: predictions})

        return self.cache.get(key, build)

    def _reference_predictions(self, version: ModelVersion) -> np.ndarray:
        model = self.registry.load(version.ref)
        if not callable(getattr(model, "predict", None)):
            raise InvalidArgument(
                f"The model of {version.ref} has no predict method to profile its output.",
                hint="Output drift needs a scikit-learn style model.",
            )
        frame = self.registry.reference_data(version.ref)
        signature = version.meta.signature
        if signature is not None and signature.feature_names:
            missing = [n for n in signature.feature_names if n not in frame.columns]
            if not missing:
                frame = frame[signature.feature_names]
        inputs = (
            frame if signature is None or signature.input_kind == "dataframe" else frame.to_numpy()
        )
        try:
            predictions = np.asarray(model.predict(inputs))
        except Exception as exc:  # a user's model: any failure means "no output profile"
            raise InvalidArgument(
                f"The model of {version.ref} failed to predict on its reference data: {exc}",
                hint="Output drift is skipped; feature drift is unaffected.",
            ) from None
        if predictions.ndim != 1:
            raise InvalidArgument(
                f"The model of {version.ref} predicts {predictions.shape[1:]} values per row.",
                hint="Output drift compares one prediction per row.",
            )
        return predictions

    # -- comparisons -----------------------------------------------------------------------------
    def compare(self, ref: str, current: Any, options: DriftOptions | None = None) -> DriftReport:
        """Drift of ``current`` (a DataFrame, pyarrow Table or dict of arrays) against the
        reference of ``ref``; columns are matched by the features' names."""
        profile = self.profile(ref)
        if hasattr(current, "columns") and not hasattr(current, "column_names"):  # pandas
            renamed = {str(c): log_column(str(c)) for c in current.columns}
            if any(k != v for k, v in renamed.items()):
                current = current.rename(columns=renamed)
        return compute_drift(profile, current, options)

    def deployment(
        self,
        deployment: str,
        ref: str,
        *,
        predictions: str | os.PathLike[str] | None = None,
        window: Any = None,
        since: Any = None,
        until: Any = None,
        options: DriftOptions | None = None,
        over_time: Any = None,
        step: Any = None,
        all_versions: bool = False,
        now: dt.datetime | None = None,
    ) -> DeploymentDrift:
        """Drift of the requests deployment ``deployment`` logged, against ``ref``'s reference.

        Args:
            deployment: the deployment's name (for messages and the record).
            ref: the version whose reference to compare with (the one the deployment serves).
            predictions: the log folder (default: the deployment's, see :func:`predictions_folder`).
            window: the last ``"1h"`` (a duration or timedelta) before ``until`` / now.
            since, until: a start and an end (datetimes or ISO texts); default: everything.
            options: the drift engine's options.
            over_time: also compute drift on sliding windows of this length (``"15m"``).
            step: the distance between those windows (default: ``over_time``).
            all_versions: use every logged row, not only those ``ref``'s version answered.

        Raises:
            NotFound: no reference data for ``ref``.
            InvalidArgument: no logged row in the window (the message says how many rows the
                log has and since when), a bad window or option.
        """
        version = self._version(ref)
        folder = (
            Path(predictions)
            if predictions is not None
            else predictions_folder(self.registry.root, deployment)
        )
        when = time_range(window=window, since=since, until=until, now=now)
        profile = self.profile(version.ref)
        options = options or DriftOptions()
        wanted = list(options.columns or profile.names)
        only = None if all_versions else version.version
        table = read_log_window(folder, [*wanted, PREDICTION], when=when, version=only)
        if table.num_rows == 0:
            raise self._empty_window(deployment, version, folder, when, only)
        present = [c for c in wanted if c in table.column_names]
        if options.columns is None:
            if not present:
                raise InvalidArgument(
                    f"The prediction log of {deployment!r} has none of the reference's columns "
                    f"({', '.join(profile.names)}).",
                    hint=f"Was {version.ref} registered with a reference of its own features?",
                )
            options = replace(options, columns=present)
        features = table.select(present)
        report = compute_drift(profile, features, options)
        stamps = timestamps(table)
        first, last = (_as_datetime(stamps.min()), _as_datetime(stamps.max()))
        output, note = self._output(version, table, options)
        timeline = None
        if over_time is not None:
            timeline, _ = drift_over_time(
                profile,
                features,
                stamps,
                window=over_time,
                step=step,
                options=replace(options, histograms=False),
            )
        return DeploymentDrift(
            deployment=deployment,
            ref=version.ref,
            window=when,
            n_rows=table.num_rows,
            first=first,
            last=last,
            report=report,
            output=output,
            output_note=note,
            timeline=timeline,
        )

    def _output(
        self, version: ModelVersion, table: pa.Table, options: DriftOptions
    ) -> tuple[FeatureDrift | None, str]:
        if PREDICTION not in table.column_names:
            return None, "the log has no prediction column"
        column = table.column(PREDICTION)
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            return None, "the model returns several values per row"
        try:
            profile = self.output_profile(version.ref)
            return output_drift(
                profile, {PREDICTION: column}, options=replace(options, columns=None)
            ), ""
        except InvalidArgument as exc:
            return None, str(exc)

    def _empty_window(
        self,
        deployment: str,
        version: ModelVersion,
        folder: Path,
        when: TimeRange,
        only: str | None,
    ) -> InvalidArgument:
        overall = summarize_log(folder, version=only)
        whose = f" answered by {version.ref}" if only else ""
        if overall.n_rows == 0:
            everything = summarize_log(folder) if only else overall
            others = (
                f" ({everything.n_rows:,} rows by other versions: {', '.join(everything.versions)};"
                " pass all_versions=True to use them)"
                if only and everything.n_rows
                else ""
            )
            return InvalidArgument(
                f"Deployment {deployment!r} has logged no prediction{whose}{others}.",
                hint="Send it requests (the log is written every few seconds, and sampled by the "
                "server's sample_rate), then ask again.",
            )
        return InvalidArgument(
            f"Deployment {deployment!r} logged no prediction{whose} {when.describe()}; "
            f"{overall.describe()}.",
            hint="Widen the window (a longer --window, or an earlier --since).",
        )


def _as_datetime(value: np.datetime64) -> dt.datetime:
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=micros)


__all__ = [
    "PROFILE_CACHE",
    "DeploymentDrift",
    "DriftMonitor",
    "ProfileCache",
    "predictions_folder",
]
