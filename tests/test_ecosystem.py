"""Stock DVC and GTO read what we write: the hub is a plain DVC/GTO model registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from jupyter_modelhub import Hub

BIN = Path(sys.executable).parent


def tool(name: str, *args: str, cwd: Path) -> str:
    exe = BIN / name if (BIN / name).exists() else shutil.which(name)
    assert exe, f"{name} is not installed"
    proc = subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DVC_NO_ANALYTICS": "1",
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "Ada",
            "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Ada",
            "GIT_COMMITTER_EMAIL": "ada@example.com",
        },
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def registry(hub: Hub, classifier) -> Hub:
    hub.register(classifier, "fraud", description="fraud detector")
    hub.register(classifier, "fraud", bump="minor")
    hub.register(classifier, "churn")
    hub.promote("fraud@v0.0.1", "prod")
    hub.promote("fraud@v0.1.0", "prod")
    hub.promote("fraud@v0.0.1", "staging")
    return hub


def test_gto_show_reads_our_versions_and_stages(registry: Hub) -> None:
    shown = json.loads(tool("gto", "show", "--json", cwd=registry.path))
    assert shown["fraud"]["version"] == "v0.1.0"
    assert shown["fraud"]["stage"]["prod"] == "v0.1.0"
    assert shown["fraud"]["stage"]["staging"] == "v0.0.1"
    assert shown["churn"]["version"] == "v0.0.1"
    ours = {m.name: m for m in registry.ls()}
    assert ours["fraud"].stages == {"prod": "v0.1.0", "staging": "v0.0.1"}


def test_gto_history_lists_every_event(registry: Hub) -> None:
    history = json.loads(tool("gto", "history", "fraud", "--json", cwd=registry.path))
    assert sorted(e["ref"] for e in history) == sorted(e.tag for e in registry.history("fraud"))


def test_dvc_api_and_dvc_artifacts_get_read_our_registry(
    registry: Hub, training_data, tmp_path
) -> None:
    import dvc.api

    shown = dvc.api.artifacts_show("fraud", stage="prod", repo=str(registry.path))
    assert shown == {"rev": registry.show("fraud#prod").commit, "path": "models/fraud/artifact"}
    shown = dvc.api.artifacts_show("fraud", version="v0.0.1", repo=str(registry.path))
    assert shown["rev"] == registry.show("fraud@v0.0.1").commit

    out = tmp_path / "fetched"
    tool(
        "dvc",
        "artifacts",
        "get",
        str(registry.path),
        "fraud",
        "--stage",
        "staging",
        "-o",
        str(out),
        cwd=tmp_path,
    )
    X, _ = training_data
    model = joblib.load(out / "model.joblib")
    np.testing.assert_array_equal(model.predict(X), registry.load("fraud#staging").predict(X))


def test_dvc_status_is_clean_and_dvc_yaml_declares_models(registry: Hub) -> None:
    assert "up to date" in tool("dvc", "status", cwd=registry.path)
    import yaml

    artifacts = yaml.safe_load((registry.path / "dvc.yaml").read_text())["artifacts"]
    assert artifacts["fraud"] == {
        "path": "models/fraud/artifact",
        "type": "model",
        "desc": "fraud detector",
    }
    assert artifacts["churn"]["type"] == "model"


def test_stock_dvc_push_and_pull_work_on_our_hub(tmp_path: Path, classifier) -> None:
    hub = Hub.init(tmp_path / "hub", remote=str(tmp_path / "remote"))
    hub.register(classifier, "fraud")
    tool("dvc", "push", cwd=hub.path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(hub.path), str(clone)], check=True)
    tool("dvc", "pull", cwd=clone)
    assert (clone / "models" / "fraud" / "artifact" / "model.joblib").is_file()
    assert "up to date" in tool("dvc", "status", cwd=clone)


def test_versions_made_by_gto_are_read_by_us(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    tool("gto", "assign", "fraud", "--version", "v0.0.1", "--stage", "qa", cwd=hub.path)
    assert hub.show("fraud#qa").version == "v0.0.1"
    assert hub.promote("fraud", "prod").tag == "fraud#prod#2"  # GTO's counter continues
