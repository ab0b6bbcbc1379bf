"""The house rules are enforced, not just written down: import-linter keeps the layer contracts
of pyproject.toml on this tree and breaks them on a copy that imports the wrong way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("recsys", "shell", "registry", "training", "inference", "serving", "commands")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


def copy_tree(dest: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_tree_keeps_every_contract():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("recsys/io.py", "import serving.web", "Layers"),  # the library importing the service
        ("recsys/cf/base.py", "import recsys.offers.ranker", "Domain packages"),  # cf above offers
        ("serving/answers.py", "import registry.store", "only through registry.loader"),
        ("recsys/customers/features.py", "import mlflow", "no web framework and no MLflow"),
    ],
)
def test_a_wrong_import_breaks_the_build(tmp_path, module, line, contract):
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # injected by the test\n")
    out = lint(tree)
    assert out.returncode != 0
    broken = [row for row in out.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(contract in row for row in broken), out.stdout
