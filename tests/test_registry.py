"""The registry as a user of the Python API sees it."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import (
    AlreadyExists,
    HubNotFound,
    IntegrityError,
    InvalidArgument,
    NotFound,
)


def cache_files(hub: Hub) -> list[Path]:
    return [p for p in hub.registry.dvc.cache_dir.rglob("*") if p.is_file()]


# -- creating and opening -------------------------------------------------------------------
def test_init_makes_a_git_and_dvc_repository(hub: Hub) -> None:
    assert (hub.path / ".git").is_dir() and (hub.path / ".dvc").is_dir()
    assert "/.modelhub/" in (hub.path / ".gitignore").read_text()
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=hub.path, capture_output=True, text=True
    )
    assert status.stdout == ""


def test_opening_a_missing_hub_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(HubNotFound) as info:
        Hub(tmp_path / "nowhere")
    assert "modelhub init" in str(info.value)


def test_default_hub_comes_from_the_environment(hub: Hub, monkeypatch) -> None:
    monkeypatch.setenv("MODELHUB_HUB", str(hub.path))
    assert Hub().path == hub.path


def test_init_twice_is_an_error_unless_exist_ok(hub: Hub) -> None:
    with pytest.raises(AlreadyExists):
        Hub.init(hub.path)
    assert Hub.init(hub.path, exist_ok=True).path == hub.path


def test_init_refuses_a_non_empty_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match="not empty"):
        Hub.init(tmp_path)


# -- registering ----------------------------------------------------------------------------
def test_register_records_everything_about_a_version(hub: Hub, classifier, training_data) -> None:
    X, _ = training_data
    frame = pd.DataFrame(X, columns=["amount", "age", "score", "count"])
    version = hub.register(
        classifier,
        "fraud",
        sample=frame,
        reference=frame,
        data=frame,
        metrics={"auc": np.float64(0.93)},
        params={"C": 1.0, "solver": "lbfgs"},
        description="baseline",
        labels=["tabular"],
    )
    assert version.ref == "fraud@v0.0.1"
    meta = hub.show("fraud@v0.0.1").meta
    assert meta.flavor == "sklearn"
    assert meta.model_type == "sklearn.linear_model._logistic.LogisticRegression"
    assert meta.metrics == {"auc": 0.93}
    assert meta.params == {"C": 1.0, "solver": "lbfgs"}
    assert meta.description == "baseline" and meta.labels == ("tabular",)
    assert meta.signature is not None
    assert meta.signature.feature_names == ["amount", "age", "score", "count"]
    assert meta.signature.input_kind == "dataframe"
    assert meta.signature.input_shape == (-1, 4)
    assert [f.dtype for f in meta.signature.outputs] == ["int64"]
    assert meta.reference is not None and meta.reference.rows == 300
    assert meta.lineage.data_hash and len(meta.lineage.data_hash) == 32
    assert "scikit-learn" in meta.lineage.environment
    assert meta.lineage.python
    assert meta.author
    pd.testing.assert_frame_equal(hub.reference_data("fraud@v0.0.1"), frame)


def test_lineage_records_the_code_commit_of_the_working_directory(
    hub: Hub, classifier, tmp_path: Path, monkeypatch
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=code, check=True)
    (code / "train.py").write_text("print('train')\n")
    subprocess.run(["git", "add", "."], cwd=code, check=True)
    subprocess.run(["git", "commit", "-qm", "train"], cwd=code, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=code, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(code)
    monkeypatch.setenv("JPY_SESSION_NAME", str(code / "train.ipynb"))
    hub.register(classifier, "fraud")
    lineage = hub.show("fraud").meta.lineage
    assert lineage.code_commit == head
    assert lineage.code_dirty is False
    assert lineage.notebook == str(code / "train.ipynb")


def test_versions_bump_patch_by_default_and_minor_or_major_on_request(hub: Hub, classifier) -> None:
    assert hub.register(classifier, "m").version == "v0.0.1"
    assert hub.register(classifier, "m").version == "v0.0.2"
    assert hub.register(classifier, "m", bump="minor").version == "v0.1.0"
    assert hub.register(classifier, "m", bump="major").version == "v1.0.0"
    assert hub.register(classifier, "m", version="2.5.0").version == "v2.5.0"
    assert hub.register(classifier, "m").version == "v2.5.1"
    assert [v.version for v in hub.versions("m")] == [
        "v2.5.1",
        "v2.5.0",
        "v1.0.0",
        "v0.1.0",
        "v0.0.2",
        "v0.0.1",
    ]


def test_an_explicit_version_that_exists_is_refused(hub: Hub, classifier) -> None:
    hub.register(classifier, "m", version="v1.2.0")
    with pytest.raises(AlreadyExists, match=r"m@v1\.2\.0 already exists"):
        hub.register(classifier, "m", version="1.2.0")


@pytest.mark.parametrize("version", ["1.2", "v1.2.x", "latest", "01.2.3"])
def test_a_malformed_version_is_refused(hub: Hub, classifier, version: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid version"):
        hub.register(classifier, "m", version=version)


@pytest.mark.parametrize(
    "name, problem",
    [
        ("../x", "path character"),
        ("a b", "contains ' '"),
        ("", "is empty"),
        ("Fraud", "uppercase"),
        ("-x", "starts or ends"),
        ("a/b", "path character"),
        ("x" * 64, "longer than 63"),
    ],
)
def test_bad_names_get_a_clear_error(hub: Hub, classifier, name: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        hub.register(classifier, name)
    assert problem in str(info.value)
    assert "lowercase letters, digits" in str(info.value)
    assert not (hub.path / "models").exists()


def test_names_with_dashes_and_underscores_are_fine(hub: Hub, classifier) -> None:
    assert hub.register(classifier, "fraud-detector_v2").ref == "fraud-detector_v2@v0.0.1"


def test_a_model_that_cannot_be_serialised_is_named_in_the_error(hub: Hub) -> None:
    class Holder:
        def __init__(self) -> None:
            self.fn = lambda x: x

        def predict(self, X):  # pragma: no cover - never called
            return X

    with pytest.raises(InvalidArgument) as info:
        hub.register(Holder(), "m")
    assert "Holder" in str(info.value)
    assert hub.ls() == []


def test_identical_bytes_cost_no_extra_storage(hub: Hub, tmp_path: Path) -> None:
    blob = tmp_path / "weights.bin"
    blob.write_bytes(os.urandom(1_000_000))
    hub.register(blob, "blob")
    before = cache_files(hub)
    hub.register(blob, "blob")
    hub.register(blob, "other-name")
    after = cache_files(hub)
    assert len(after) == len(before)
    assert sum(p.stat().st_size for p in after) == sum(p.stat().st_size for p in before)


def test_registering_files_and_folders(hub: Hub, tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    version = hub.register(folder, "bert")
    assert version.meta.flavor == "files" and version.meta.artifact.nfiles == 2
    loaded = hub.load("bert")
    assert (loaded / "config.json").read_text() == '{"layers": 2}'
    assert (loaded / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"
    with pytest.raises(NotFound, match="No file or folder"):
        hub.register(tmp_path / "missing.onnx", "x")


def test_joblib_file_registers_as_sklearn(hub: Hub, classifier, training_data, tmp_path) -> None:
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(classifier, path)
    version = hub.register(path, "from-file")
    assert version.meta.flavor == "sklearn"
    X, _ = training_data
    np.testing.assert_array_equal(hub.load("from-file").predict(X), classifier.predict(X))


def test_onnx_conversion_keeps_both_and_predicts_the_same(
    hub: Hub, classifier, training_data
) -> None:
    X, _ = training_data
    version = hub.register(classifier, "fraud", sample=X, onnx=True)
    assert version.meta.files == {"model": "model.joblib", "onnx": "model.onnx"}
    artifact = hub.artifact_path("fraud")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(artifact / "model.onnx"))
    labels = session.run(None, {"input": X.astype(np.float32)})[0]
    np.testing.assert_array_equal(labels, classifier.predict(X))


def test_onnx_models_register_and_load_as_sessions(hub: Hub, classifier, training_data) -> None:
    import onnx
    from skl2onnx import to_onnx

    X, _ = training_data
    proto = to_onnx(classifier, X[:1].astype(np.float32), options={"zipmap": False})
    assert isinstance(proto, onnx.ModelProto)
    version = hub.register(proto, "onnx-model")
    assert version.meta.flavor == "onnx"
    session = hub.load("onnx-model")
    labels = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]
    np.testing.assert_array_equal(labels, classifier.predict(X))


# -- reading ----------------------------------------------------------------------------------
def test_ls_lists_models_with_latest_version_and_stages(hub: Hub, classifier) -> None:
    hub.register(classifier, "b-model")
    hub.register(classifier, "a-model")
    hub.register(classifier, "a-model")
    hub.promote("a-model@v0.0.1", "prod")
    rows = {m.name: m for m in hub.ls()}
    assert list(rows) == ["a-model", "b-model"]
    assert rows["a-model"].latest == "v0.0.2" and rows["a-model"].versions == 2
    assert rows["a-model"].stages == {"prod": "v0.0.1"}
    assert rows["b-model"].stages == {}


def test_unknown_references_suggest_close_names(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    with pytest.raises(NotFound, match="Did you mean 'fraud'"):
        hub.show("frod")
    with pytest.raises(NotFound, match=r"no version v9\.9\.9"):
        hub.show("fraud@v9.9.9")
    with pytest.raises(NotFound, match="stage 'prod'"):
        hub.show("fraud#prod")


def test_load_verifies_the_artifact_before_loading_it(hub: Hub, classifier) -> None:
    version = hub.register(classifier, "fraud")
    entries = hub.registry.dvc.tree_entries(version.meta.artifact)
    target = hub.registry.dvc.object_path(entries[0][1])
    os.chmod(target, 0o644)
    target.write_bytes(b"not a model" + target.read_bytes()[11:])
    with pytest.raises(IntegrityError, match="corrupt"):
        hub.load("fraud")


# -- stages and history -------------------------------------------------------------------------
def test_promote_moves_a_stage_and_history_says_who_and_when(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    hub.register(classifier, "fraud")
    first = hub.promote("fraud@v0.0.1", "prod")
    second = hub.promote("fraud@v0.0.2", "prod")
    assert first.tag == "fraud#prod#1" and second.tag == "fraud#prod#2"
    assert hub.show("fraud#prod").version == "v0.0.2"
    assert hub.show("fraud@v0.0.1").stages == ()
    events = hub.history("fraud")
    assert [(e.kind, e.version, e.stage) for e in events] == [
        ("register", "v0.0.1", None),
        ("register", "v0.0.2", None),
        ("assign", "v0.0.1", "prod"),
        ("assign", "v0.0.2", "prod"),
    ]
    assert all(e.author for e in events)
    assert events[2].time < events[3].time


def test_what_was_in_prod_at_a_given_time(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    hub.register(classifier, "fraud")
    hub.promote("fraud@v0.0.1", "prod")
    hub.promote("fraud@v0.0.2", "prod")
    first, second = [e for e in hub.history("fraud") if e.kind == "assign"]
    assert hub.show("fraud#prod", at=first.time).version == "v0.0.1"
    assert hub.show("fraud#prod", at=second.time).version == "v0.0.2"
    with pytest.raises(NotFound):
        hub.show("fraud#prod", at=first.time - timedelta(seconds=1))


def test_demote_falls_back_to_the_previous_holder(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    hub.register(classifier, "fraud")
    hub.promote("fraud@v0.0.1", "prod")
    hub.promote("fraud@v0.0.2", "prod")
    event = hub.demote("fraud", "prod")
    assert event.tag == "fraud#prod!#3" and event.version == "v0.0.2"
    assert hub.show("fraud#prod").version == "v0.0.1"
    hub.demote("fraud#prod", "prod")
    with pytest.raises(NotFound):
        hub.show("fraud#prod")
    with pytest.raises(InvalidArgument, match="not in stage"):
        hub.demote("fraud@v0.0.1", "prod")


def test_stages_are_free_form_and_validated(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    hub.promote("fraud", "shadow-eu")
    assert hub.ls()[0].stages == {"shadow-eu": "v0.0.1"}
    with pytest.raises(InvalidArgument, match="Invalid stage name"):
        hub.promote("fraud", "Prod Env")


def test_deprecate_and_deregister(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    hub.register(classifier, "fraud")
    assert hub.deregister("fraud@v0.0.2").tag == "fraud@v0.0.2!#1"
    assert hub.show("fraud").version == "v0.0.1"
    hub.deprecate("fraud")
    assert hub.ls()[0].deprecated is True
    with pytest.raises(InvalidArgument, match="explicit version"):
        hub.deregister("fraud")


# -- remote ---------------------------------------------------------------------------------------
def test_push_and_pull_through_a_dvc_remote(tmp_path: Path, classifier, training_data) -> None:
    hub = Hub.init(tmp_path / "hub", remote=str(tmp_path / "remote"))
    X, _ = training_data
    hub.register(classifier, "fraud", reference=X)
    assert hub.push() == 3  # the model file, its folder listing, the reference sample
    assert hub.push() == 0  # nothing new to send
    assert (tmp_path / "remote" / "files" / "md5").is_dir()
    # A teammate's clone has the git history but an empty cache: load fetches the bytes.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(hub.path), str(clone)], check=True)
    teammate = Hub(clone)
    assert not teammate.registry.dvc.has_object(teammate.show("fraud").meta.artifact)
    model = teammate.load("fraud@v0.0.1")
    np.testing.assert_array_equal(model.predict(X), classifier.predict(X))
    assert teammate.reference_data("fraud").shape == (300, 4)


def test_pull_without_a_remote_says_how_to_add_one(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    with pytest.raises(NotFound, match="no DVC remote"):
        hub.pull("fraud")


def test_times_are_timezone_aware(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    created = hub.show("fraud").meta.created
    assert created.tzinfo is not None
    assert abs(created - datetime.now(timezone.utc)) < timedelta(minutes=5)
