"""The quickstart notebook runs from top to bottom on a fresh hub."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from jupyter_modelhub import Hub

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def cell_text(cell) -> str:
    """What a reader sees under a cell: its printed text, then its results."""
    printed = "".join(out.text for out in cell.outputs if out.output_type == "stream")
    results = [out.data.get("text/plain", "") for out in cell.outputs if "data" in out]
    return "\n".join([printed, *results])


def test_quickstart_runs_end_to_end(tmp_path: Path, monkeypatch) -> None:
    hub_path = tmp_path / "hub"
    monkeypatch.setenv("MODELHUB_HUB", str(hub_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = "\n".join(cell_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "Registered cancer@v0.0.1" in outputs
    assert "Registered cancer@v0.1.0" in outputs
    assert "cancer@v0.0.1 accuracy:" in outputs
    assert "Deployment cancer-svc" in outputs or "cancer-svc" in outputs
    assert "Promoted: deployment cancer-svc serves cancer@v0.1.0" in outputs
    assert "mean radius" in outputs and "worst area" in outputs  # the drifted features
    assert "0 v0.0.1" in outputs or "1 v0.0.1" in outputs  # after the rollback
    hub = Hub(hub_path)
    assert hub.ls()[0].stages == {"prod": "v0.1.0"}  # the A/B winner took the stage
    assert hub.deployments() == []  # the notebook stopped what it started
    assert hub.show("cancer@v0.0.1").meta.files == {"model": "model.joblib", "onnx": "model.onnx"}
