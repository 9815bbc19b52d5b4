"""``%modelhub``: what a user sees in a cell, asserted exactly.

Cells run in a real ``InteractiveShell`` that re-raises the error of a failing cell (after
IPython has shown it, as a notebook would), so a test sees both the exception and the text.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from jupyter_modelhub import Hub, commands
from jupyter_modelhub.magics import ModelHubMagics
from jupyter_modelhub.views import Message, Table

SESSION = "/home/ada/work/fraud/train.ipynb"


class RaisingShell(InteractiveShell):
    """An ``InteractiveShell`` whose ``run_cell`` raises the cell's error."""

    def run_cell(self, *args: Any, **kwargs: Any) -> Any:
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


@pytest.fixture
def ip(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[RaisingShell]:
    """A fresh shell with the extension loaded and ``$MODELHUB_HUB`` at a fresh hub."""
    monkeypatch.setenv("MODELHUB_HUB", str(hub.path))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help to the terminal's width
    config = Config()
    config.HistoryAccessor.enabled = False  # no SQLite history file per shell
    shell = RaisingShell(config=config)
    shell.run_cell("%load_ext jupyter_modelhub")
    yield shell
    shell.cleanup()  # gives sys.modules["__main__"] back
    atexit.unregister(shell.atexit_operations)


@pytest.fixture
def ns(ip: RaisingShell, classifier, training_data) -> dict[str, Any]:
    """The variables a data scientist has after training."""
    X, _ = training_data
    ip.user_ns.update(model=classifier, X_test=X[:20], X_train=X, __session__=SESSION)
    return ip.user_ns


def cell(ip: RaisingShell, line: str) -> Any:
    """Run ``line`` as a cell and return what the cell evaluates to."""
    return ip.run_cell(line).result


def usage_error(ip: RaisingShell, line: str) -> str:
    with pytest.raises(UsageError) as excinfo:
        ip.run_cell(line)
    return str(excinfo.value)


def register_fraud(ip: RaisingShell) -> Any:
    return cell(ip, "%modelhub register model --name fraud --sample X_test --reference X_train")


# -- loading -----------------------------------------------------------------------------------
def test_load_ext_registers_the_line_magic(ip: RaisingShell) -> None:
    assert "modelhub" in ip.magics_manager.magics["line"]
    assert isinstance(ip.magics_manager.registry["ModelHubMagics"], ModelHubMagics)


# -- register ----------------------------------------------------------------------------------
def test_register_from_variables(ip: RaisingShell, ns: dict[str, Any], hub: Hub) -> None:
    result = cell(
        ip,
        "%modelhub register model --name fraud --sample X_test --reference X_train"
        " --metric auc=0.93 --onnx",
    )

    assert isinstance(result, Message)
    assert result.text == "Registered fraud@v0.0.1"
    assert result.details[1:] == [
        "signature: 4 inputs (ndarray)",
        "reference data: 300 rows kept for drift detection",
    ]
    version = Hub(hub.path).show("fraud@v0.0.1")
    assert version.meta.signature is not None
    assert len(version.meta.signature.inputs) == 4
    assert version.meta.reference is not None
    assert version.meta.reference.rows == 300
    assert version.meta.lineage.notebook == SESSION
    assert version.meta.metrics == {"auc": 0.93}
    assert sorted(version.meta.files.values()) == ["model.joblib", "model.onnx"]


def test_register_shows_html_in_a_notebook(ip: RaisingShell, ns: dict[str, Any]) -> None:
    html = cell(ip, "%modelhub register model --name fraud")._repr_html_()

    assert html.startswith("<div class='jp-ModelHub-message'>Registered fraud@v0.0.1<br>")


def test_register_without_reference_keeps_no_reference(
    ip: RaisingShell, ns: dict[str, Any], hub: Hub
) -> None:
    cell(ip, "%modelhub register model --name fraud --sample X_test")

    version = Hub(hub.path).show("fraud@v0.0.1")
    assert version.meta.reference is None
    assert version.meta.signature is not None
    assert len(version.meta.signature.inputs) == 4


def test_register_falls_back_to_files(
    ip: RaisingShell, training_data, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = training_data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    monkeypatch.chdir(tmp_path)
    joblib.dump(LogisticRegression().fit(frame, y), "model.joblib")
    frame.to_csv("train.csv", index=False)

    result = cell(
        ip, "%modelhub register model.joblib --name fraud --sample train.csv --data train.csv"
    )

    assert result.text == "Registered fraud@v0.0.1"
    version = Hub(hub.path).show("fraud@v0.0.1")
    assert version.meta.signature is not None
    assert version.meta.signature.feature_names == ["a", "b", "c", "d"]
    assert version.meta.lineage.data_hash
    assert version.meta.lineage.notebook is None


def test_a_variable_wins_over_a_file_of_the_same_name(
    ip: RaisingShell, ns: dict[str, Any], hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("X_test").write_text("not a table")

    cell(ip, "%modelhub register model --name fraud --sample X_test")

    assert Hub(hub.path).show("fraud@v0.0.1").meta.signature is not None


def test_notebook_path_from_the_environment(
    ip: RaisingShell, classifier, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "/srv/notebooks/churn.ipynb")
    ip.user_ns["clf"] = classifier

    cell(ip, "%modelhub register clf --name churn")

    assert Hub(hub.path).show("churn@v0.0.1").meta.lineage.notebook == (
        "/srv/notebooks/churn.ipynb"
    )


def test_second_registration_bumps_the_version(ip: RaisingShell, ns: dict[str, Any]) -> None:
    register_fraud(ip)

    assert cell(ip, "%modelhub register model --name fraud --bump minor").text == (
        "Registered fraud@v0.1.0"
    )


# -- reading -----------------------------------------------------------------------------------
def test_ls_html_has_the_model_row(ip: RaisingShell, ns: dict[str, Any]) -> None:
    register_fraud(ip)

    result = cell(ip, "%modelhub ls")

    assert isinstance(result, Table)
    td = "<td style='text-align:left'>"
    assert f"<tr>{td}fraud</td>{td}v0.0.1</td>{td}1</td>{td}</td>" in result._repr_html_()


def test_ls_of_an_empty_hub(ip: RaisingShell) -> None:
    assert cell(ip, "%modelhub ls").to_text() == (
        "No models yet. Register one with `%modelhub register MODEL --name NAME`."
    )


def test_show_a_stage_after_promote(ip: RaisingShell, ns: dict[str, Any]) -> None:
    register_fraud(ip)

    promoted = cell(ip, "%modelhub promote fraud@v0.0.1 --stage prod -m 'passed review'")
    shown = cell(ip, "%modelhub show fraud#prod")

    assert promoted.text == "fraud@v0.0.1 is now in stage 'prod'"
    rows = {row[0]: row[1] for row in shown.rows}
    assert rows["version"] == "fraud@v0.0.1"
    assert rows["stages"] == ("prod",)
    assert rows["notebook"] == SESSION
    assert "<td style='text-align:left'>fraud@v0.0.1</td>" in shown._repr_html_()


def test_json_returns_parsed_data(ip: RaisingShell, ns: dict[str, Any]) -> None:
    register_fraud(ip)
    cell(ip, "%modelhub promote fraud@v0.0.1 --stage prod")

    models = cell(ip, "%modelhub ls --json")
    version = cell(ip, "%modelhub show fraud --json")

    assert isinstance(models, list)
    assert [(m["name"], m["latest"], m["versions"], m["stages"]) for m in models] == [
        ("fraud", "v0.0.1", 1, {"prod": "v0.0.1"})
    ]
    assert isinstance(version, dict)
    assert (version["tag"], version["stages"]) == ("fraud@v0.0.1", ["prod"])
    assert version["meta"]["lineage"]["notebook"] == SESSION


def test_hub_option_opens_another_hub(ip: RaisingShell, ns: dict[str, Any], tmp_path: Path) -> None:
    other = Hub.init(tmp_path / "other")

    cell(ip, f"%modelhub --hub {other.path} register model --name fraud")

    assert [m.name for m in Hub(other.path).ls()] == ["fraud"]
    assert cell(ip, "%modelhub ls --json") == []


# -- init --------------------------------------------------------------------------------------
def test_init_creates_a_hub(ip: RaisingShell, tmp_path: Path) -> None:
    where = tmp_path / "team-hub"

    result = cell(ip, f"%modelhub init {where}")

    assert result.text == f"Hub ready at {where.resolve()}"
    assert Hub(where).ls() == []


def test_init_twice_is_a_usage_error(ip: RaisingShell, tmp_path: Path) -> None:
    cell(ip, f"%modelhub init {tmp_path / 'h'}")

    assert usage_error(ip, f"%modelhub init {tmp_path / 'h'}") == (
        f"A hub already exists at {tmp_path / 'h'}. Open it with Hub(path) instead."
    )


# -- user mistakes -----------------------------------------------------------------------------
def test_unknown_variable_suggests_the_closest(
    ip: RaisingShell, ns: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    message = usage_error(ip, "%modelhub register modl --name fraud")

    assert message == "No variable or file named 'modl' (did you mean 'model'?)"
    # what the notebook shows: one line, no traceback
    assert capsys.readouterr().err == f"UsageError: {message}\n"


def test_unknown_data_variable_suggests_the_closest(ip: RaisingShell, ns: dict[str, Any]) -> None:
    assert usage_error(ip, "%modelhub register model --name fraud --sample X_tst") == (
        "No variable or file named 'X_tst' (did you mean 'X_test'?)"
    )


def test_unknown_variable_without_a_close_name(ip: RaisingShell) -> None:
    assert usage_error(ip, "%modelhub register zzz --name fraud") == (
        "No variable or file named 'zzz'"
    )


def test_bad_model_name(ip: RaisingShell, ns: dict[str, Any]) -> None:
    message = usage_error(ip, "%modelhub register model --name ../x")

    assert message.startswith("Invalid model name '../x'")


def test_bad_metric(ip: RaisingShell, ns: dict[str, Any]) -> None:
    assert usage_error(ip, "%modelhub register model --name fraud --metric auc") == (
        "Invalid metric 'auc'. Write --metric key=value."
    )


def test_missing_hub(ip: RaisingShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("MODELHUB_HUB", str(nowhere))

    assert usage_error(ip, "%modelhub ls") == (
        f"No model hub at {nowhere}. Create one with `modelhub init` (or `%modelhub init` in a "
        "notebook), or point MODELHUB_HUB at an existing hub."
    )
    assert f"`%modelhub init {nowhere}`" in usage_error(ip, f"%modelhub --hub {nowhere} ls")


def test_unknown_version(ip: RaisingShell, ns: dict[str, Any]) -> None:
    register_fraud(ip)

    assert usage_error(ip, "%modelhub show fraud@v9.9.9") == (
        "fraud has no version v9.9.9. Known versions: v0.0.1."
    )


def test_typo_in_the_verb_suggests_the_closest(ip: RaisingShell) -> None:
    assert usage_error(ip, "%modelhub regster model --name fraud") == (
        "%modelhub: unknown command 'regster'. Did you mean 'register'?\n"
        "usage: %modelhub [-h] [--hub HUB] COMMAND ..."
    )


def test_missing_option_shows_the_verbs_usage(ip: RaisingShell, ns: dict[str, Any]) -> None:
    message = usage_error(ip, "%modelhub register model")

    first, usage = message.split("\n", 1)
    assert first == "%modelhub register: the following arguments are required: --name"
    assert usage.startswith("usage: %modelhub register [-h] [--json] --name NAME")


def test_bad_choice_of_an_option_is_not_called_a_command(
    ip: RaisingShell, ns: dict[str, Any]
) -> None:
    first = usage_error(ip, "%modelhub register model --name fraud --bump huge").split("\n")[0]

    assert first == (
        "%modelhub register: argument --bump: invalid choice: 'huge' "
        "(choose from 'major', 'minor', 'patch')"
    )


def test_unrecognized_option_shows_the_verbs_usage(ip: RaisingShell) -> None:
    assert usage_error(ip, "%modelhub ls --all") == (
        "%modelhub ls: unrecognized arguments: --all\nusage: %modelhub ls [-h] [--json]"
    )


def test_unbalanced_quote(ip: RaisingShell) -> None:
    assert usage_error(ip, "%modelhub show 'fraud") == (
        '%modelhub: No closing quotation in "show \'fraud"'
    )


# -- help --------------------------------------------------------------------------------------
@pytest.mark.parametrize("line", ["%modelhub", "%modelhub --help", "%modelhub -h"])
def test_help_lists_every_verb(
    ip: RaisingShell, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cell(ip, line) is None

    out, err = capsys.readouterr()
    assert out.startswith("usage: %modelhub [-h] [--hub HUB] COMMAND ...\n")
    lines = [" ".join(text.split()) for text in out.splitlines()]
    for verb, description in commands.DESCRIPTIONS.items():
        assert f"{verb} {description}" in lines or (verb in lines and description in lines), verb
    assert "Run `%modelhub COMMAND --help` for a command's options." in " ".join(lines)
    assert err == ""


def test_help_with_only_the_hub_option(
    ip: RaisingShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cell(ip, f"%modelhub --hub {tmp_path}") is None

    assert capsys.readouterr().out.startswith("usage: %modelhub [-h] [--hub HUB] COMMAND ...\n")


def test_help_of_a_verb(ip: RaisingShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert cell(ip, "%modelhub register --help") is None

    out, err = capsys.readouterr()
    assert out.startswith("usage: %modelhub register [-h] [--json] --name NAME")
    assert "\nRegister a model as a new version.\n" in out
    assert "name of a variable holding the model" in out
    assert "--reference REFERENCE" in out
    assert err == ""


def test_the_kernel_survives_help_and_errors(
    ip: RaisingShell, ns: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cell(ip, "%modelhub --help")
    usage_error(ip, "%modelhub regster")

    assert register_fraud(ip).text == "Registered fraud@v0.0.1"
    assert cell(ip, "x = %modelhub ls --json\nlen(x)") == 1
    assert np.array_equal(ip.user_ns["X_test"], ns["X_test"])
