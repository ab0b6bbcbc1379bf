"""Execute every notebook in place, storing its outputs: on The Complete Journey and the
registered champion by default (after ``make run``), or on the data and model the
RECSYS_NOTEBOOK_DATA and RECSYS_NOTEBOOK_MODEL variables name.

    python tools/run_notebooks.py [NOTEBOOK ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"


def main() -> int:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(FOLDER.glob("*.ipynb"))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    for path in paths:
        book = nbformat.read(path, as_version=4)
        NotebookClient(
            book, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
        for cell in book.cells:
            cell.get("metadata", {}).pop("execution", None)  # no timings: the file changes only with its outputs
        nbformat.write(book, path)
        print(f"{path.name}: {sum(len(c.get('outputs', [])) for c in book.cells if c.cell_type == 'code')} outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
