"""How the training job writes to MLflow: each stage in a nested run, its metrics also on the
parent run (where the registry's quality gate reads them), tables as CSV, figures as PNG."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd


class Tracker:
    """Logs to the active (stage) run and to the parent run ``run_id``; remembers every metric."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics: dict) -> None:
        """Finite values only: to the stage's run and to the parent run."""
        clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(float(v))}
        mlflow.log_metrics(clean)
        mlflow.log_metrics(clean, run_id=self.run_id)
        self.metrics.update(clean)

    def log_params(self, params: dict, *, parent: bool = True) -> None:
        mlflow.log_params(params)
        if parent:
            mlflow.log_params(params, run_id=self.run_id)

    @staticmethod
    def log_table(frame: pd.DataFrame, path: str) -> None:
        """``frame`` as CSV at ``path`` among the stage run's artifacts."""
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / Path(path).name
            frame.to_csv(file)
            folder = Path(path).parent
            mlflow.log_artifact(str(file), str(folder) if folder != Path(".") else None)

    @staticmethod
    def log_figures(figures: dict, folder: str) -> None:
        """Each figure as ``folder/<name>.png``, then closed."""
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"{folder}/{name}.png")
            plt.close(fig)


def git_commit() -> str | None:
    """The checkout's commit, when it runs from one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None
