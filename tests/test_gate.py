"""The quality gate on successive trainings: like with like, the champion re-scored on the
candidate's own evaluation, --no-promote, and refusing what could not be evaluated."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from commands import main as cli
from recsys.data.sources import write_tables
from registry import store
from training.config import TrainConfig
from training.gate import quality_gate
from training.pipeline import train

SMALL = {
    "horizon_days": 30,
    "churn_snapshots": 10,
    "als": {"factors": 16, "iterations": 8, "regularization": 0.5},
    "min_campaign_offers": 5,
}
NAME = "loyalty-offers"


def _cut(tables: dict, before: str) -> dict:
    out = {}
    for name, df in tables.items():
        out[name] = df[df["timestamp"] < pd.Timestamp(before)] if name in ("transactions", "offer_events") else df
    return out


@pytest.fixture(scope="module")
def weekly(tmp_path_factory, synth):
    """Two trainings on growing data: to 2024-11-01 (forced to champion), then to the end."""
    tables, _ = synth
    tmp = tmp_path_factory.mktemp("gate")
    early, full = tmp / "early", tmp / "full"
    write_tables(_cut(tables, "2024-11-01"), early)
    write_tables(tables, full)
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    first = train(TrainConfig(data=str(early), experiment="gate", force_promote=True, **SMALL))
    second = train(TrainConfig(data=str(full), experiment="gate", promote=False, **SMALL))
    yield first, second, uri, full
    mp.undo()
    mlflow.set_tracking_uri(None)


def test_the_champion_is_rescored_on_the_candidates_evaluation(weekly):
    first, second, uri, _ = weekly
    gate = second.gate
    assert gate.champion == first.version
    rescored = [c for c in gate.checks if "re-scored on this evaluation" in c["what"]]
    assert {c["metric"] for c in rescored} == {"churn_model_roc_auc", "churn_model_average_precision"}
    for c in rescored:  # the candidate's own value, the champion's on the same customers, the interval
        assert c["value"] == pytest.approx(second.metrics[c["metric"]], abs=1e-9)
        assert 0 < gate.champion_metrics[c["metric"]] < 1
        assert c["ok"] == (c["value"] >= gate.champion_metrics[c["metric"]] - 0.01)
        assert "difference" in c["what"] and "[" in c["what"]
    # the champion's figures are logged beside the candidate's
    logged = MlflowClient(uri).get_run(second.run_id).data.metrics
    assert logged["gate_champion_churn_model_roc_auc"] == pytest.approx(gate.champion_metrics["churn_model_roc_auc"])
    # trained on other data: offer and CF metrics against baselines only, and said
    assert "other data" in gate.note


def test_no_promote_leaves_the_champion(weekly):
    first, second, _, _ = weekly
    assert not second.gate.promoted
    assert store.alias_version(NAME, "champion") == first.version


def test_first_forced_promotion_is_recorded(weekly):
    first, _, uri, _ = weekly
    client = MlflowClient(uri)
    status = client.get_model_version(NAME, first.version).tags["quality_gate"]
    assert status == first.gate.status and status in ("passed", "forced")
    out = CliRunner().invoke(cli, ["models", "list"], env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code == 0, out.output
    line = next(row for row in out.output.splitlines() if row.split()[0] == first.version)
    assert "30" in line.split() and status in line.split()


def test_another_horizon_is_another_model_line(weekly):
    first, _, _, full = weekly
    other = train(TrainConfig(data=str(full), experiment="gate", **{**SMALL, "horizon_days": 45}))
    failing = [c for c in other.gate.checks if not c["ok"]]
    assert "horizon_days" in [c["metric"] for c in failing]
    assert "another model line" in next(c["what"] for c in failing if c["metric"] == "horizon_days")
    assert not other.gate.promoted and store.alias_version(NAME, "champion") == first.version


def test_a_candidate_without_an_evaluation_is_refused_unless_forced(weekly):
    first, _, uri, _ = weekly
    client = MlflowClient(uri)
    exp = client.get_run(first.run_id).info.experiment_id
    params = client.get_run(first.run_id).data.params
    run = client.create_run(exp, run_name="not evaluated")
    for key in ("horizon_days", "held_out_campaigns"):
        client.log_param(run.info.run_id, key, params[key])
    client.set_terminated(run.info.run_id)
    src = client.get_model_version(NAME, first.version).source
    version = str(client.create_model_version(NAME, src, run_id=run.info.run_id).version)
    refused = quality_gate(NAME, version)
    assert not refused.passed and not refused.promoted
    assert all(c["rule"] == "evaluated" for c in refused.checks if not c["ok"])
    assert {c["metric"] for c in refused.checks if not c["ok"]} >= {"churn_model_roc_auc"}
    forced = quality_gate(NAME, version, force=True)
    assert forced.promoted and forced.forced and forced.status == "forced"
    assert "--force-promote" in forced.report()
    store.promote(NAME, first.version)  # restore for the other tests


def test_make_run_retrains_only_for_other_data(weekly, monkeypatch):
    from tools.make_run import _champion_on

    first, _, uri, full = weekly
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RECSYS_EVENTS_URL", "")
    assert _champion_on(str(full.parent / "early")) == first.version  # the champion's own data: reused
    assert _champion_on(str(full)) is None  # grown since: retrained


def test_make_run_checks_the_port_and_keeps_one_development_key(tmp_path):
    import socket

    from tools.make_run import main

    runner = CliRunner()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = runner.invoke(main, ["check-port", str(busy.getsockname()[1])])
        assert out.exit_code != 0 and "in use" in out.output
    keys = tmp_path / "api_keys.json"
    first = runner.invoke(main, ["dev-key", str(keys)]).output.strip()
    again = runner.invoke(main, ["dev-key", str(keys)]).output.strip()
    assert first == again and first.startswith("rk_")
    assert len(json.loads(keys.read_text())["keys"]) == 1  # not one more admin key per run
    assert oct((tmp_path / ".dev_key").stat().st_mode & 0o777) == "0o600"


def test_drift_from_the_champions_data_is_measured_and_warned(weekly):
    from recsys.evaluation import PSI_WARN, drift_table, psi

    _, second, uri, _ = weekly
    drift = second.gate.drift
    assert drift is not None and {"churn_probability", "recency_days"} <= set(drift["feature"])
    logged = MlflowClient(uri).get_run(second.run_id).data.metrics
    assert logged["drift_psi_recency_days"] == pytest.approx(
        float(drift.set_index("feature").loc["recency_days", "psi"])
    )
    # the index itself, against planted shifts
    import numpy as np

    rng = np.random.default_rng(0)
    same = psi(rng.normal(size=5000), rng.normal(size=5000))
    moved = psi(rng.normal(size=5000), rng.normal(1.0, 1.0, size=5000))
    assert same < 0.02 and moved > PSI_WARN
    table = drift_table(pd.DataFrame({"a": rng.normal(size=2000)}), pd.DataFrame({"a": rng.normal(2, 1, size=2000)}))
    assert table.loc[0, "shifted"] and table.loc[0, "ks_p_value"] < 1e-6
