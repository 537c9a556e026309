"""The tutorial notebook (docs/tutorial.ipynb) runs top to bottom on the public API and ends with a report."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def test_tutorial_notebook_executes_and_writes_the_report(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the dev extra (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the dev extra (nbclient)")
    pytest.importorskip("ipykernel", reason="the notebook test needs the dev extra (ipykernel)")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # the kernel inherits it: one thread, as the rest of the suite
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # no kernelspec installed: jupyter_client falls back to ipykernel in this interpreter (sys.executable)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    page = tmp_path / "tutorial-runs" / "report.html"
    assert page.is_file() and f"wrote {page.relative_to(tmp_path)}" in outputs
    assert "log p(x) =" in outputs and "k-NN accuracy" in outputs
    text = page.read_text(encoding="utf-8")
    assert text.count("<section ") == 7 and "rate–distortion plane" in text and "MCMC clouds" in text
