"""The training pipeline against a real MLflow tracking store (SQLite in a temporary folder)."""

from __future__ import annotations

import os

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from commands import main as cli
from recsys.constants import GATE_METRICS
from recsys.offers import evaluation_campaigns, hold_out_events
from registry import loader, store
from training.config import STAGES, TrainConfig
from training.gate import quality_gate
from training.pipeline import train

SMALL = {
    "horizon_days": 30,
    "churn_snapshots": 14,
    "als": {"factors": 16, "iterations": 8, "regularization": 0.5},
    "min_campaign_offers": 5,
}


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_dir):
    """One full training run on the small synthetic dataset (module-scoped: it takes a while)."""
    tmp = tmp_path_factory.mktemp("mlflow")
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    result = train(TrainConfig(data=str(synth_dir), experiment="test", **SMALL))
    yield result, uri, tmp
    mp.undo()


def test_every_stage_is_a_nested_run_with_timings_and_artifacts(trained):
    result, uri, _ = trained
    client = MlflowClient(uri)
    parent = client.get_run(result.run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(r.info.run_name for r in children) == sorted(STAGES)
    assert all("seconds" in r.data.metrics for r in children)
    m = parent.data.metrics
    for key in GATE_METRICS:
        assert key in m, key
    for key in (
        "churn_recency_rule_roc_auc",
        "churn_bgnbd_roc_auc",
        "churn_logistic_roc_auc",
        "churn_model_brier",
        "churn_model_lift_top10",
        "cf_popularity_all_ndcg_at_10",
        "cf_repeat_purchase_discovery_recall_at_10",
        "offers_personal_history_recall_at_10",
        "offers_als_recall_at_10",
        "stage_churn_seconds",
    ):
        assert key in m, key
    gains = [k for k in m if k.endswith("_engine_gain_vs_personal_history")]
    assert gains  # one per evaluation campaign, inside its bootstrap interval
    for k in gains:
        assert m[f"{k}_low"] <= m[k] <= m[f"{k}_high"]
    for key in ("churn_model_roc_auc", "churn_model_average_precision"):
        assert m[f"{key}_low"] <= m[key] <= m[f"{key}_high"], key
    for baseline in ("recency_rule", "bgnbd", "logistic"):
        key = f"churn_model_minus_{baseline}_average_precision"
        assert m[key] == pytest.approx(m["churn_model_average_precision"] - m[f"churn_{baseline}_average_precision"])
        assert m[f"{key}_low"] <= m[key] <= m[f"{key}_high"], key
    p = parent.data.params
    assert len(p["data_fingerprint"]) == 16 and p["as_of"]
    assert parent.data.tags.get("git_commit")
    names = {c.info.run_name: c.info.run_id for c in children}
    load = client.get_run(names["load"])
    assert load.inputs.dataset_inputs[0].dataset.digest == p["data_fingerprint"]
    arts = {a.path for a in client.list_artifacts(names["churn"], "churn")}
    assert {"churn/calibration.png", "churn/capture.png", "churn/segment_auc.csv"} <= arts
    assert "segments/cluster_profiles.png" in {a.path for a in client.list_artifacts(names["segmentation"], "segments")}
    assert "cf/ndcg_vs_baselines.png" in {a.path for a in client.list_artifacts(names["cf"], "cf")}
    assert "offers/campaign_recall.png" in {a.path for a in client.list_artifacts(names["evaluate"], "offers")}


def test_models_beat_naive_baselines_on_planted_data(trained):
    m = trained[0].metrics
    assert m["cf_als_discovery_recall_at_10"] > 2 * m["cf_popularity_discovery_recall_at_10"]
    assert m["offers_engine_recall_at_10"] > m["offers_random_recall_at_10"]
    assert m["churn_model_roc_auc"] > 0.85


def test_registered_with_candidate_alias_and_gate_decides_champion(trained):
    result, uri, _ = trained
    client = MlflowClient(uri)
    mv = client.get_model_version_by_alias("loyalty-offers", "candidate")
    assert str(mv.version) == result.version
    gate = result.gate
    assert gate.passed == all(c["ok"] for c in gate.checks) and gate.checks
    champion = store.alias_version("loyalty-offers", "champion")
    assert (champion == result.version) == gate.passed
    assert client.get_run(result.run_id).data.tags["quality_gate"] == ("passed" if gate.passed else "failed")


def test_pyfunc_model_predicts_offers_and_churn(trained):
    result, _, _ = trained
    model = mlflow.pyfunc.load_model(f"models:/loyalty-offers/{result.version}")
    customers = result.bundle.customers.index[:3].tolist()
    catalog = result.bundle.catalog
    during = str((catalog["start_date"].max() + pd.Timedelta(days=1)).date())  # the last campaign runs
    out = model.predict(pd.DataFrame({"customer_id": [*customers, "nobody"]}), params={"k": 2, "as_of": during})
    assert out.loc[out["customer_id"] == "nobody", "cold_start"].all()
    assert set(out["customer_id"]) <= set(customers) | {"nobody"}
    assert {"offer_id", "p_redeem", "expected_value", "reason", "churn_probability", "risk_band"} <= set(out.columns)
    known = out[out["customer_id"].isin(customers)]
    assert not known.empty and known["churn_probability"].between(0, 1).all()
    assert out.groupby("customer_id").size().max() <= 2
    sig = model.metadata.signature
    assert sig is not None and "customer_id" in sig.inputs.input_names()


def test_same_data_and_seed_give_the_same_metrics(tracking, synth_dir):
    cfg = dict(data=str(synth_dir), experiment="repro", until="evaluate", **SMALL)
    a = train(TrainConfig(**cfg)).metrics
    b = train(TrainConfig(**cfg)).metrics
    drop = [k for k in a if k.endswith("seconds")]
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


def test_stages_after_churn_see_the_basket_lines_not_the_released_transactions(
    tracking, synth_dir, monkeypatch, tmp_path
):
    from recsys.data import duck
    from recsys.data.line_file import LineFile
    from training import pipeline

    monkeypatch.setattr(duck, "ON_DISK_FROM", 0)  # the lines in a database file, as for large data
    temp = tmp_path / "duck"
    temp.mkdir()
    monkeypatch.setenv("RECSYS_DUCKDB_TEMP", str(temp))
    seen, kinds = {}, {}

    def spy(stage):
        original = pipeline.STAGE_FUNCTIONS[stage]

        def run(cfg, track, load, **results):
            seen[stage] = (load.ds.transactions is not None, load.lines.directory, sorted(os.listdir(temp)))
            kinds[stage] = (type(load.ds.transactions), load.stage)
            if stage == "offers":
                snapshots[stage] = results["churn"].backtest.data  # the churn stage's stacked snapshots
                raise RuntimeError("the offers stage fails")
            return original(cfg, track, load, **results)

        return run

    snapshots = {}
    for stage in ("features", "churn", "cf", "offers"):
        monkeypatch.setitem(pipeline.STAGE_FUNCTIONS, stage, spy(stage))
    with pytest.raises(RuntimeError, match="the offers stage fails"):
        train(TrainConfig(data=str(synth_dir), experiment="released", until="offers", **SMALL))
    assert snapshots == {"offers": None}  # released after the churn stage: packaging reads none of them
    (lines,) = {directory for _, directory, _ in seen.values()}  # one set of lines for the run
    assert [(stage, held) for stage, (held, _, _) in seen.items()] == [
        ("features", True),
        ("churn", True),
        ("cf", False),
        ("offers", False),
    ]
    assert os.path.basename(lines) in seen["cf"][2]
    # a Parquet source's transactions validated in batches and kept on disk, never as a frame
    (stage,) = {s for _, s in kinds.values()}
    assert kinds["features"][0] is LineFile and kinds["churn"][0] is LineFile
    assert os.path.basename(stage) in seen["features"][2] and os.path.isdir(stage) is False
    assert not os.listdir(temp)  # the lines' database and the staged lines are gone with the failed run


def test_gate_compares_with_the_champion_and_rollback_restores_it(trained):
    result, uri, _ = trained
    name = "loyalty-offers"
    client = MlflowClient(uri)
    # a worse model on the same data: its run carries lower gate metrics
    exp = client.get_run(result.run_id).info.experiment_id
    params = client.get_run(result.run_id).data.params
    run = client.create_run(exp, run_name="worse")
    for key in ("data_fingerprint", "as_of", "horizon_days", "held_out_campaigns"):
        client.log_param(run.info.run_id, key, params[key])
    for key, value in client.get_run(result.run_id).data.metrics.items():
        client.log_metric(run.info.run_id, key, value - 0.05 if key == "offers_engine_recall_at_10" else value)
    client.set_terminated(run.info.run_id)
    src = client.get_model_version(name, result.version).source
    store.promote(name, result.version)
    worse = client.create_model_version(name, src, run_id=run.info.run_id).version
    gate = quality_gate(name, str(worse), tolerance=0.01)
    assert not gate.passed and not gate.promoted
    against_champion = [c for c in gate.checks if "champion v" in c["what"]]
    assert {c["metric"] for c in against_champion} == set(GATE_METRICS)  # same data: every metric compared
    assert [c["metric"] for c in against_champion if not c["ok"]] == ["offers_engine_recall_at_10"]
    assert "FAILED" in gate.report()
    assert store.alias_version(name, "champion") == result.version
    # by hand: promote the worse one, then roll back
    runner = CliRunner()
    out = runner.invoke(cli, ["models", "promote", str(worse)], env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code == 0, out.output
    assert store.alias_version(name, "champion") == str(worse)
    out = runner.invoke(cli, ["models", "rollback"], env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code == 0 and f"back to version {result.version}" in out.output
    assert store.alias_version(name, "champion") == result.version
    out = runner.invoke(cli, ["models", "list"], env={"MLFLOW_TRACKING_URI": uri})
    assert "champion" in out.output and str(worse) in out.output
    out = runner.invoke(cli, ["models", "promote", "999"], env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code != 0 and "has no version 999" in out.output


def test_held_out_campaigns_never_evaluated(synth_dir):
    from recsys.data import load_dataset

    ds = load_dataset(synth_dir)
    as_of = ds.transactions["timestamp"].max()
    chosen = evaluation_campaigns(ds, as_of, min_offers=5, held_out=(5,))
    assert chosen and 5 not in chosen
    with pytest.raises(ValueError, match="campaign 5 is held out"):
        evaluation_campaigns(ds, as_of, configured=(4, 5), held_out=(5,))


def test_unknown_stage_is_named():
    with pytest.raises(ValueError, match="unknown stage 'fit'"):
        train(TrainConfig(data="x", until="fit"))


def test_held_out_campaign_events_are_dropped_before_training(synth_dir):
    from recsys.data import load_dataset

    ds = load_dataset(synth_dir)
    kept, dropped = hold_out_events(ds, (5,))
    assert dropped == int((ds.offer_events["campaign_id"] == 5).sum()) > 0
    assert 5 not in set(kept.offer_events["campaign_id"]) and len(kept.offer_events) == len(ds.offer_events) - dropped
    assert hold_out_events(ds, ())[1] == 0


def test_registry_uris_load_the_bundle_for_service_and_exports(trained, tmp_path):
    result, uri, _ = trained
    by_version = loader.load_bundle(f"models:/loyalty-offers/{result.version}", uri)
    by_alias = loader.load_bundle("models:/loyalty-offers@candidate", uri)
    assert by_alias.version == result.version and by_alias.alias == "candidate" and by_alias.name == "loyalty-offers"
    pd.testing.assert_frame_equal(by_version.bundle.customers, result.bundle.customers)
    with pytest.raises(store.RegistryError, match="models:/loyalty-offers@nobody"):
        loader.load_bundle("models:/loyalty-offers@nobody", uri)
    from serving import create_app
    from serving.auth import KeyStore

    key = KeyStore(tmp_path / "keys.json").create("read")
    app = create_app(
        {
            "model_uri": "models:/loyalty-offers@candidate",
            "tracking_uri": uri,
            "api_keys_file": str(tmp_path / "keys.json"),
            "events_url": f"sqlite:///{tmp_path / 'e.db'}",
        }
    )
    info = app.test_client().get("/v1/model", headers={"X-API-Key": key}).json
    assert info["version"] == result.version and info["alias"] == "candidate" and info["name"] == "loyalty-offers"


def test_campaign_18_is_held_out_by_default_on_the_complete_journey_only(synth, tmp_path):
    from recsys.data import completejourney as cj
    from recsys.data import load_dataset
    from recsys.data.sources import write_tables
    from recsys.offers import held_out_for

    tables, _ = synth
    plain, marked = tmp_path / "retailer", tmp_path / "cj"
    write_tables(tables, plain)
    write_tables(tables, marked, extras=cj.source_marker())
    assert held_out_for(load_dataset(plain), None) == ()  # a retailer's own campaign 18 stays
    assert held_out_for(load_dataset(marked), None) == (18,)
    assert held_out_for(load_dataset(marked), ()) == () and held_out_for(load_dataset(plain), (5,)) == (5,)


@pytest.mark.parametrize("what", ["one customer", "no offer catalog"])
def test_data_no_stage_can_train_on_is_refused_before_any_work(synth, tmp_path, what):
    from recsys.data.sources import write_tables

    tables, _ = synth
    tables = {k: v.copy() for k, v in tables.items()}
    if what == "one customer":
        keep = tables["transactions"]["customer_id"].iloc[0]
        tables["transactions"] = tables["transactions"][tables["transactions"]["customer_id"] == keep]
        tables["offer_events"] = tables["offer_events"][tables["offer_events"]["customer_id"] == keep]
        tables["customers"] = tables["customers"][tables["customers"]["customer_id"] == keep]
        expected = "training needs at least 20"
    else:
        del tables["offers"], tables["offer_events"]
        expected = "offers: is missing or empty"
    write_tables(tables, tmp_path / "data")
    out = CliRunner().invoke(
        cli, ["train", "--data", str(tmp_path / "data")], env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    )
    assert out.exit_code == 2, out.output
    assert expected in out.output and "Traceback" not in out.output
