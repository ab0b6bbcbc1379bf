"""A real `mlflow server` with PostgreSQL as its backend store, and `mlflow run` on the MLproject."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from serving.probe import wait_http
from tests.procs import child_env, free_port, stop

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.postgres
def test_train_against_a_tracking_server_backed_by_postgresql(postgres_url, synth_dir, tmp_path, monkeypatch):
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            postgres_url,
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", server)
        env = child_env(MLFLOW_TRACKING_URI=uri)
        done = subprocess.run(
            [str(BIN / "recsys"), "train", "--data", str(synth_dir), "--horizon-days", "30", "--churn-snapshots", "14"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode in (0, 3), done.stderr[-3000:]
        assert "quality gate for version 1" in done.stdout
        if done.returncode == 3:  # the gate kept the champion alias unset: promote by hand
            promoted = subprocess.run(
                [str(BIN / "recsys"), "models", "promote", "1"], env=env, capture_output=True, text=True, timeout=120
            )
            assert promoted.returncode == 0, promoted.stderr
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        model = mlflow.pyfunc.load_model("models:/loyalty-offers@champion")
        bundle = model.unwrap_python_model().bundle
        customers = bundle.customers.index[:2].tolist()
        during = str((bundle.catalog["start_date"].max() + pd.Timedelta(days=1)).date())
        out = model.predict(pd.DataFrame({"customer_id": customers}), params={"k": 3, "as_of": during})
        assert set(out["customer_id"]) == set(customers)
        # the runs live in PostgreSQL: the server lists them
        runs = mlflow.search_runs(experiment_names=["loyalty-offers"])
        assert len(runs) >= 10  # the parent run and one per stage
    finally:
        stop(server)
        mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_mlflow_run_entry_point(synth_dir, tmp_path):
    env = child_env(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    )  # as in an activated environment
    done = subprocess.run(
        [
            str(BIN / "mlflow"),
            "run",
            str(ROOT),
            "-e",
            "main",
            "--env-manager",
            "local",
            "--experiment-name",
            "mlproject",
            "-P",
            f"data={synth_dir}",
            "-P",
            "horizon_days=30",
            "-P",
            "churn_snapshots=14",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    # the small synthetic campaigns are below the offer evaluation's minimum (20 offers): every
    # stage runs, and the gate refuses a candidate whose evaluation could not run (recsys train
    # exits 3, which `mlflow run` reports as a failed run)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "offers_engine_recall_at_10 = n/a evaluated n/a (its evaluation could not run" in out, out[-3000:]
    assert "Traceback" not in done.stdout
    client = mlflow.tracking.MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("mlproject")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1  # the project's run is the pipeline's parent run
    stages = {r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert set(stages) == {
        "load",
        "features",
        "segmentation",
        "churn",
        "cf",
        "offers",
        "evaluate",
        "package",
        "register",
    }, stages
    assert {"churn_model_roc_auc", "cf_als_all_ndcg_at_10"} <= set(parents[0].data.metrics)
    # registered as a candidate, not promoted: its offer evaluation could not run
    assert str(client.get_model_version_by_alias("loyalty-offers", "candidate").version) == "1"
    assert client.get_model_version("loyalty-offers", "1").tags["quality_gate"] == "failed"
    assert "champion" not in client.get_model_version("loyalty-offers", "1").aliases
