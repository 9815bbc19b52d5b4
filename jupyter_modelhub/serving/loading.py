"""Loading a registered version for serving: verified bytes, a runtime, a self-test.

Each file the runtime needs is read once, straight from the hub's DVC cache (pulled from the
remote first when it is not there), and hashed against its recorded md5 *before* it is
deserialised: the bytes that are loaded are exactly the bytes that were verified, with no window
for a swap on disk. Nothing is written to the hub, so any number of replicas can start at once
(materialising a checkout folder from several processes at the same time is not safe).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import IntegrityError, InvalidArgument, NotFound
from ..models import FeatureSpec, ModelVersion
from ..registry.registry import ModelRegistry
from .errors import ModelLoadError
from .features import FeatureBatch, FeatureSchema
from .runtime import ModelRuntime, OnnxRuntime, SklearnRuntime, onnx_session

RuntimeChoice = Literal["auto", "onnx", "sklearn"]
RUNTIMES = ("auto", "onnx", "sklearn")
SERVABLE_FLAVORS = ("sklearn", "joblib", "onnx")

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    """A version loaded for serving: its registry record and the runtime that predicts."""

    version: ModelVersion
    runtime: ModelRuntime

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def version_id(self) -> str:
        return self.version.version

    @property
    def flavor(self) -> str:
        return self.version.meta.flavor


def load_served_model(
    registry: ModelRegistry, ref: str, runtime: RuntimeChoice | str = "auto"
) -> ServedModel:
    """Resolve ``ref``, load its verified artifact into a runtime and self-test it.

    Raises:
        NotFound: no such model, version or stage, or the artifact is not available.
        IntegrityError: the artifact's bytes do not match their recorded md5.
        ModelLoadError: the version cannot be served (flavor, inputs, failing self-test).
        InvalidArgument: an unknown ``runtime``.
    """
    if runtime not in RUNTIMES:
        raise InvalidArgument(
            f"Unknown runtime {runtime!r}.", hint=f"Choose one of {', '.join(RUNTIMES)}."
        )
    version = registry.show(ref)
    meta = version.meta
    if meta.flavor not in SERVABLE_FLAVORS:
        raise ModelLoadError(
            f"{version.ref} is a '{meta.flavor}' artifact: the model server serves "
            "scikit-learn, joblib and ONNX models."
        )
    onnx_file = meta.files.get("onnx") or (meta.files["model"] if meta.flavor == "onnx" else None)
    use_onnx = runtime == "onnx" or (runtime == "auto" and onnx_file is not None)
    if use_onnx and onnx_file is None:
        raise ModelLoadError(
            f"{version.ref} has no ONNX file.",
            hint="Register it with onnx=True (--onnx), or serve it with runtime 'sklearn'.",
        )
    if runtime == "sklearn" and meta.flavor == "onnx":
        raise ModelLoadError(f"{version.ref} is an ONNX model; serve it with runtime 'onnx'.")
    read = _verified_reader(registry, version)
    model: ModelRuntime
    if use_onnx:
        assert onnx_file is not None
        try:
            model = _onnx_runtime(read(onnx_file), version)
        except ModelLoadError:
            if runtime == "onnx" or meta.flavor == "onnx":
                raise
            log.info("ONNX runtime does not fit %s; using scikit-learn", version.ref)
            model = _sklearn_runtime(read(meta.files["model"]), version)
    else:
        model = _sklearn_runtime(read(meta.files["model"]), version)
    served = ServedModel(version, model)
    self_test(served, registry)
    return served


def _verified_reader(registry: ModelRegistry, version: ModelVersion) -> Callable[[str], bytes]:
    obj = version.meta.artifact
    dvc = registry.dvc
    if not dvc.has_object(obj):
        if not dvc.remotes():
            raise NotFound(
                f"The artifact of {version.ref} is not in this hub's cache and the hub has no "
                "DVC remote to fetch it from.",
                hint="Add the team's remote with `dvc remote add -d NAME URL`, then retry.",
            )
        registry.pull(version.ref)
    entries = dict(dvc.tree_entries(obj))  # the file list is itself checked against its md5
    single = not obj.md5.endswith(".dir")

    def read(relpath: str) -> bytes:
        md5 = next(iter(entries.values())) if single else entries.get(relpath)
        if md5 is None:
            raise ModelLoadError(f"{version.ref}'s artifact has no file {relpath!r}.")
        try:
            data = dvc.object_path(md5).read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"{relpath} of {version.ref} ({md5}) is missing from this hub's cache.",
                hint=f"Fetch it with `modelhub pull {version.ref}`.",
            ) from None
        if hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
            raise IntegrityError(
                f"The artifact {obj.path} is corrupt: {relpath}'s bytes no longer match its md5 "
                f"{md5}. It was not loaded.",
                hint="Run `modelhub doctor` and pull it again from the remote.",
            )
        return data

    return read


def _sklearn_runtime(data: bytes, version: ModelVersion) -> SklearnRuntime:
    import joblib

    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ModelLoadError(f"{version.ref} could not be unpickled: {exc}") from exc
    signature = version.meta.signature
    if signature is not None and signature.inputs:
        schema = FeatureSchema.from_signature(signature)
    else:
        schema = _schema_from_estimator(model, version)
    return SklearnRuntime(model, schema)


def _schema_from_estimator(model: Any, version: ModelVersion) -> FeatureSchema:
    names = getattr(model, "feature_names_in_", None)
    width = getattr(model, "n_features_in_", None)
    if names is not None:
        return FeatureSchema.build([FeatureSpec(str(n), "float64") for n in names], "dataframe")
    if width is None:
        raise ModelLoadError(
            f"{version.ref} was registered without a signature and the model does not say "
            "how many features it takes.",
            hint="Register it again with a sample input (sample=X / --sample FILE).",
        )
    return FeatureSchema.build([FeatureSpec(f"f{i}", "float64") for i in range(width)], "ndarray")


def _onnx_runtime(data: bytes, version: ModelVersion) -> OnnxRuntime:
    try:
        session = onnx_session(data)
    except Exception as exc:
        raise ModelLoadError(f"onnxruntime cannot load {version.ref}: {exc}") from exc
    inputs = session.get_inputs()
    signature = version.meta.signature
    single_type = _onnx_numpy_type(inputs[0].type) if len(inputs) == 1 else None
    if signature is not None and signature.inputs:
        schema = FeatureSchema.from_signature(signature, matrix_dtype=single_type)
    elif len(inputs) == 1 and len(inputs[0].shape) == 2 and isinstance(inputs[0].shape[1], int):
        dtype = str(np.dtype(single_type or np.float32))
        specs = [FeatureSpec(f"f{i}", dtype) for i in range(inputs[0].shape[1])]
        schema = FeatureSchema.build(specs, "ndarray", matrix_dtype=single_type)
    else:
        specs = [FeatureSpec(i.name, str(np.dtype(_onnx_numpy_type(i.type)))) for i in inputs]
        schema = FeatureSchema.build(specs, "dataframe")
    return OnnxRuntime(session, schema)


def _onnx_numpy_type(onnx_type: str) -> Any:
    from .runtime import _ORT_TYPES

    return _ORT_TYPES.get(onnx_type, np.object_)


def self_test(served: ServedModel, registry: ModelRegistry | None = None) -> None:
    """Predict every output on one zero row (or, if the model refuses it, a reference row).

    Also learns the outputs' dtypes and shapes, which the v2 metadata reports.
    """
    runtime = served.runtime
    try:
        sample = runtime.predict(runtime.schema.zero_batch(), runtime.output_names)
    except Exception as exc:
        reference = _reference_row(served, registry)
        if reference is None:
            raise ModelLoadError(
                f"The self-test prediction of {served.version.ref} on a zero row failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        try:
            sample = runtime.predict(reference, runtime.output_names)
        except Exception as exc2:
            raise ModelLoadError(
                f"The self-test prediction of {served.version.ref} failed on a zero row and on "
                f"a reference row: {type(exc2).__name__}: {exc2}"
            ) from exc2
    runtime.describe_outputs(sample)


def _reference_row(served: ServedModel, registry: ModelRegistry | None) -> FeatureBatch | None:
    if registry is None or served.version.meta.reference is None:
        return None
    try:
        frame = registry.reference_data(served.version.ref)
        schema = served.runtime.schema
        row = frame.iloc[:1]
        columns = [row[name].to_numpy() for name in schema.names]
        return schema.from_columns(columns, schema.names)
    except Exception:
        return None
