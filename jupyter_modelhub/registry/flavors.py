"""Model flavors: how a model object or file becomes artifact files, and how it comes back.

- ``sklearn``: any joblib-serialisable estimator with ``predict`` (``model.joblib``), optionally
  converted to ONNX at registration with skl2onnx (``model.onnx`` beside it);
- ``joblib``: any other joblib-serialisable object;
- ``onnx``: an ``onnx.ModelProto`` or a ``.onnx`` file (``model.onnx``);
- ``files``: any other file or folder, kept as it is.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument, NotFound

JOBLIB_SUFFIXES = {".joblib", ".pkl", ".pickle"}


@dataclass
class PreparedArtifact:
    """What will be stored: files from disk and files made in memory, by artifact-relative path."""

    flavor: str
    model_type: str
    files: dict[str, str]  # role -> relpath
    from_disk: dict[str, Path] = field(default_factory=dict)
    in_memory: dict[str, bytes] = field(default_factory=dict)
    model: Any = None  # the live object when we have it (for the signature)


def type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def prepare(model: Any, *, onnx: bool = False, sample: Any = None) -> PreparedArtifact:
    """Turn what the user gave into artifact files; raise ``InvalidArgument`` on what we cannot."""
    if isinstance(model, (str, Path)):
        return _prepare_path(Path(model).expanduser(), onnx=onnx, sample=sample)
    if type_name(model) == "onnx.onnx_ml_pb2.ModelProto" or _is_onnx_proto(model):
        if onnx:
            raise InvalidArgument(
                "--onnx converts scikit-learn models; this model is already ONNX."
            )
        return PreparedArtifact(
            "onnx",
            "onnx.ModelProto",
            {"model": "model.onnx"},
            in_memory={"model.onnx": model.SerializeToString()},
            model=model,
        )
    return _joblib_artifact(model, onnx, sample, in_memory={"model.joblib": _dump_joblib(model)})


def _joblib_artifact(model: Any, onnx: bool, sample: Any, **stored: Any) -> PreparedArtifact:
    """A joblib model (``sklearn`` when it predicts), plus its ONNX conversion if asked."""
    prepared = PreparedArtifact(
        "sklearn" if hasattr(model, "predict") else "joblib",
        type_name(model),
        {"model": "model.joblib"},
        model=model,
        **stored,
    )
    if onnx:
        prepared.in_memory["model.onnx"] = convert_to_onnx(model, sample)
        prepared.files["onnx"] = "model.onnx"
    return prepared


def _is_onnx_proto(obj: Any) -> bool:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        return False
    return isinstance(obj, onnx.ModelProto)


def _dump_joblib(model: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    try:
        joblib.dump(model, buffer)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidArgument(
            f"Cannot serialise a model of type {type_name(model)} with joblib: {exc}",
            hint="Register a picklable object, an ONNX model, or a file/folder path.",
        ) from exc
    return buffer.getvalue()


def _prepare_path(path: Path, *, onnx: bool, sample: Any) -> PreparedArtifact:
    if not path.exists():
        raise NotFound(f"No file or folder at {path}.", hint="Check the path you gave.")
    if path.is_dir():
        if onnx:
            raise InvalidArgument("--onnx needs a scikit-learn model, not a folder.")
        files = {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*")) if p.is_file()}
        if not files:
            raise InvalidArgument(f"The folder {path} is empty: there is nothing to register.")
        return PreparedArtifact("files", "folder", {"model": "."}, from_disk=files)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        if onnx:
            raise InvalidArgument("--onnx converts scikit-learn models; this file is already ONNX.")
        return PreparedArtifact(
            "onnx", "onnx.ModelProto", {"model": "model.onnx"}, from_disk={"model.onnx": path}
        )
    if suffix in JOBLIB_SUFFIXES:
        return _joblib_artifact(
            _load_joblib_file(path), onnx, sample, from_disk={"model.joblib": path}
        )
    if onnx:
        raise InvalidArgument(f"--onnx needs a scikit-learn model; {path.name} is not one.")
    return PreparedArtifact("files", "file", {"model": path.name}, from_disk={path.name: path})


def _load_joblib_file(path: Path) -> Any:
    """Open a user's own joblib file once, to learn its type (the user chose to trust it)."""
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:
        raise InvalidArgument(
            f"{path.name} could not be read as a joblib/pickle file: {exc}",
            hint="Register it as plain files by giving its folder, or save it with joblib.dump.",
        ) from exc


def convert_to_onnx(model: Any, sample: Any = None) -> bytes:
    """Convert a fitted scikit-learn model to ONNX (float inputs) with skl2onnx."""
    import numpy as np

    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:  # pragma: no cover - skl2onnx is a dependency
        raise InvalidArgument("--onnx needs skl2onnx: pip install skl2onnx.") from exc
    n_features = getattr(model, "n_features_in_", None)
    if sample is not None:
        n_features = np.asarray(sample).reshape(len(sample), -1).shape[1]
    if n_features is None:
        raise InvalidArgument(
            f"Cannot convert {type_name(model)} to ONNX without knowing its inputs.",
            hint="Pass a sample input (sample=X / --sample FILE).",
        )
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    try:
        proto = to_onnx(
            model,
            initial_types=[("input", FloatTensorType([None, int(n_features)]))],
            options=options,
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
    except Exception as exc:
        raise InvalidArgument(
            f"skl2onnx cannot convert {type_name(model)} to ONNX: {exc}",
            hint="Register without --onnx to keep the scikit-learn runtime only.",
        ) from exc
    return bytes(proto.SerializeToString())


def load(flavor: str, files: dict[str, str], paths: dict[str, Path], folder: Path | None) -> Any:
    """Rebuild the live model from verified files (``paths`` maps relpath to a readable file)."""
    if flavor in ("sklearn", "joblib"):
        import joblib

        return joblib.load(paths[files["model"]])
    if flavor == "onnx":
        import onnxruntime

        return onnxruntime.InferenceSession(
            str(paths[files["model"]]), providers=["CPUExecutionProvider"]
        )
    if folder is None:
        raise InvalidArgument("A 'files' artifact must be materialised to a folder first.")
    return folder if files.get("model") == "." else folder / files["model"]
