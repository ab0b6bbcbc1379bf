"""The notebooks are stored with their outputs (on The Complete Journey and its champion), and
run top to bottom on a small synthetic sample and a model trained on it, so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01_data_tour.ipynb",
        "02_segments_and_retention.ipynb",
        "03_churn.ipynb",
        "04_offers.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, synth_experiments_dir, lift_bundle, monkeypatch):
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.get("outputs") is not None for c in code)
    stored = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert stored, "stored with its outputs, figures included"
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert "load_bundle(MODEL)" in "".join(c.source for c in code), "every notebook loads the model"
    monkeypatch.setenv("RECSYS_NOTEBOOK_DATA", str(synth_experiments_dir))
    monkeypatch.setenv("RECSYS_NOTEBOOK_MODEL", str(lift_bundle[1]))
    monkeypatch.setenv("RECSYS_NOTEBOOK_HORIZON", "30")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "every notebook shows at least one plot"
