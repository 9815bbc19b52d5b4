"""The ``modelhub`` command line as a terminal user or a CI pipeline sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def modelhub(*args: str, hub: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1"}
    if hub is not None:
        env["MODELHUB_HUB"] = str(hub)
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_modelhub.cli", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def model_file(tmp_path: Path, classifier) -> Path:
    path = tmp_path / "model.joblib"
    joblib.dump(classifier, path)
    return path


def test_the_whole_cycle_from_a_terminal(tmp_path: Path, model_file: Path, training_data) -> None:
    hub = tmp_path / "hub"
    assert modelhub("init", str(hub)).stdout.startswith(f"Hub ready at {hub}")
    X, _ = training_data
    sample = tmp_path / "sample.csv"
    pd.DataFrame(X, columns=list("abcd")).to_csv(sample, index=False)
    out = modelhub(
        "register",
        str(model_file),
        "--name",
        "fraud",
        "--sample",
        str(sample),
        "--reference",
        str(sample),
        "--metric",
        "auc=0.91",
        "--param",
        "C=1",
        "-d",
        "baseline",
        hub=hub,
    ).stdout
    assert out.splitlines()[0] == "Registered fraud@v0.0.1"
    assert "signature: 4 inputs (dataframe)" in out
    modelhub("register", str(model_file), "--name", "fraud", "--bump", "minor", hub=hub)
    assert modelhub("promote", "fraud@v0.0.1", "--stage", "prod", hub=hub).stdout.strip() == (
        "fraud@v0.0.1 is now in stage 'prod'"
    )
    table = modelhub("ls", hub=hub).stdout.splitlines()
    assert table[0].split() == ["NAME", "LATEST", "VERSIONS", "STAGES", "UPDATED"]
    assert table[1].split()[:5] == ["fraud", "v0.1.0", "2", "prod:", "v0.0.1"]
    shown = json.loads(modelhub("show", "fraud#prod", "--json", hub=hub).stdout)
    assert shown["meta"]["version"] == "v0.0.1"
    assert shown["meta"]["metrics"] == {"auc": 0.91}
    assert shown["meta"]["params"] == {"C": 1}
    assert [f["name"] for f in shown["meta"]["signature"]["inputs"]] == list("abcd")
    history = json.loads(modelhub("history", "fraud", "--json", hub=hub).stdout)
    assert [e["kind"] for e in history] == ["register", "register", "assign"]
    versions = modelhub("versions", "fraud", hub=hub).stdout
    assert "v0.1.0" in versions and "baseline" in versions
    assert "healthy" in modelhub("doctor", hub=hub).stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["register", "model.joblib", "--name", "../x"], "Invalid model name '../x'"),
        (["show", "nosuch"], "No model named 'nosuch'"),
        (["show", "fraud@1.2"], "Invalid version '1.2'"),
        (["promote", "fraud@v0.0.1", "--stage", "Prod"], "Invalid stage name 'Prod'"),
        (["register", "missing.joblib", "--name", "m"], "No file or folder at missing.joblib"),
        (["register", "model.joblib", "--name", "m", "--metric", "auc"], "Invalid metric 'auc'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line_and_no_traceback(
    tmp_path: Path, model_file: Path, args: list[str], message: str, monkeypatch
) -> None:
    hub = tmp_path / "hub"
    modelhub("init", str(hub))
    monkeypatch.chdir(model_file.parent)
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_modelhub.cli", *args],
        capture_output=True,
        text=True,
        cwd=model_file.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MODELHUB_HUB": str(hub)},
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_missing_hub_says_how_to_create_it(tmp_path: Path) -> None:
    proc = modelhub("ls", hub=tmp_path / "none", ok=False)
    assert proc.returncode == 2
    assert "modelhub init" in proc.stderr and "Traceback" not in proc.stderr


def test_typos_suggest_the_command(tmp_path: Path) -> None:
    proc = modelhub("promte", ok=False)
    assert proc.returncode == 2
    assert "Did you mean 'promote'?" in proc.stderr


def test_help_lists_every_verb() -> None:
    out = modelhub("--help").stdout
    for verb in (
        "init",
        "register",
        "ls",
        "show",
        "history",
        "promote",
        "demote",
        "push",
        "pull",
        "doctor",
    ):
        assert verb in out
    assert "--sample" in modelhub("register", "--help").stdout


def test_push_and_pull_show_progress(tmp_path: Path, model_file: Path) -> None:
    hub = tmp_path / "hub"
    modelhub("init", str(hub), "--remote", str(tmp_path / "remote"))
    modelhub("register", str(model_file), "--name", "fraud", hub=hub)
    pushed = modelhub("push", hub=hub)
    assert pushed.stdout.strip() == "Pushed 2 file(s)"
    assert "/2 [" in pushed.stderr  # DVC's bar over the 2 files, drawn even without a terminal


def test_registering_a_large_file_shows_progress(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    modelhub("init", str(hub))
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "layer.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    (weights / "config.json").write_text("{}")
    out = modelhub("register", str(weights), "--name", "big", hub=hub)
    assert out.stdout.startswith("Registered big@v0.0.1")
    assert "storing big" in out.stderr and "100%" in out.stderr  # the bar reached its end
    small = modelhub("register", str(weights / "config.json"), "--name", "small", hub=hub)
    assert "storing" not in small.stderr  # small files are stored without a bar
