"""The notebooks run top to bottom on a small synthetic sample, so they never rot."""

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
def test_notebook_runs(path, synth_dir, monkeypatch):
    book = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), "stored with outputs"
    monkeypatch.setenv("RECSYS_NOTEBOOK_DATA", str(synth_dir))
    monkeypatch.setenv("RECSYS_NOTEBOOK_HORIZON", "30")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "every notebook shows at least one plot"
