"""The exports on Spark (local mode): the same rows as the local exports on the same model and
data, through the command line as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recsys.bundle import ModelBundle

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java on the PATH"),
]
RECSYS = str(Path(sys.executable).with_name("recsys"))
KEY = ["customer_id", "rank"]


def _run(*args, env=None):
    done = subprocess.run([RECSYS, *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _env(tmp_path):
    import os

    return {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "RECSYS_SPARK_MASTER": "local[2]",
        "RECSYS_CONTROL_SHARE": "0.2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'unused.db'}",
    }


def test_offers_on_spark_are_the_local_export(synth_bundle_dir, synth_dir, tmp_path):
    env = _env(tmp_path)
    bundle = ModelBundle.load(synth_bundle_dir)
    as_of = str(bundle.catalog["start_date"].max().date())
    common = ["--model", str(synth_bundle_dir), "--data", str(synth_dir), "--as-of", as_of, "--k", "4"]
    local, spark = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    _run("export", "offers", *common, "--events", "", "--out", str(local), env=env)
    done = _run("export", "offers", *common, "--events", "", "--out", str(spark), "--engine", "spark", env=env)
    assert "on Spark" in done.stdout
    assert spark.is_dir() and (spark / "_SUCCESS").exists()  # a Parquet dataset, committed
    a = pd.read_parquet(local).sort_values(KEY).reset_index(drop=True)
    b = pd.read_parquet(spark)[list(a.columns)].sort_values(KEY).reset_index(drop=True)
    assert len(a) > 500 and a["customer_id"].nunique() > 100
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    # the control group: the same offers held back, with the same propensities and event ids
    held = [pd.read_parquet(p.with_name(f"{p.stem}.held_out.parquet")) for p in (local, spark)]
    assert len(held[0]) > 20
    pd.testing.assert_frame_equal(
        *(h.sort_values(["customer_id", "offer_id"]).reset_index(drop=True) for h in held), check_dtype=False
    )


def test_offers_on_spark_for_a_given_list_of_customers(synth_bundle_dir, synth_dir, tmp_path):
    env = _env(tmp_path)
    bundle = ModelBundle.load(synth_bundle_dir)
    ids = [*bundle.customers.index[:40], "new-1", "new-2"]
    pd.DataFrame({"customer_id": ids}).to_parquet(tmp_path / "ids.parquet")
    as_of = str(bundle.catalog["start_date"].max().date())
    common = ["--model", str(synth_bundle_dir), "--data", str(synth_dir), "--as-of", as_of, "--events", ""]
    common += ["--customers", str(tmp_path / "ids.parquet")]
    _run("export", "offers", *common, "--out", str(tmp_path / "l.parquet"), env=env)
    _run("export", "offers", *common, "--out", str(tmp_path / "s.parquet"), "--engine", "spark", env=env)
    a = pd.read_parquet(tmp_path / "l.parquet").sort_values(KEY).reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "s.parquet")[list(a.columns)].sort_values(KEY).reset_index(drop=True)
    assert set(a["customer_id"]) == set(ids)  # the new customers too, as cold starts
    assert a.loc[a["customer_id"].isin(["new-1", "new-2"]), "cold_start"].all()
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_at_risk_on_spark_is_the_local_list_in_its_order(synth_bundle_dir, tmp_path):
    env = _env(tmp_path)
    common = ["--model", str(synth_bundle_dir), "--min-risk", "0.2"]
    _run("export", "at-risk", *common, "--out", str(tmp_path / "l.parquet"), env=env)
    _run("export", "at-risk", *common, "--out", str(tmp_path / "s.parquet"), "--engine", "spark", env=env)
    a = pd.read_parquet(tmp_path / "l.parquet")
    b = pd.read_parquet(tmp_path / "s.parquet")[list(a.columns)]
    assert len(a) > 20
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)


def test_spark_output_must_be_a_parquet_dataset(synth_bundle_dir, tmp_path):
    command = [RECSYS, "export", "at-risk", "--model", str(synth_bundle_dir), "--out", str(tmp_path / "x.csv")]
    done = subprocess.run(
        [*command, "--engine", "spark"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
    )
    assert done.returncode == 2 and "Parquet dataset" in done.stderr


def test_bundles_of_one_name_in_one_session_each_rank_as_their_own(synth_bundle_dir, lift_bundle, tmp_path):
    other = lift_bundle[1]
    """Two bundles in folders of the same name (two registry downloads, a retrained bundle
    written over the last), exported in one Spark session: each gives its own local list."""
    from inference.exports import export_at_risk
    from inference.spark import export_at_risk_spark
    from recsys.spark import spark_session

    first, second = tmp_path / "a" / "bundle", tmp_path / "b" / "bundle"
    shutil.copytree(synth_bundle_dir, first)
    shutil.copytree(other, second)
    spark = spark_session("recsys-test-bundles")
    try:
        for path in (first, second, first):
            local = export_at_risk(ModelBundle.load(path), min_risk=0.2)
            found = export_at_risk_spark(path, min_risk=0.2, spark=spark).toPandas()[list(local.columns)]
            assert len(local) > 20
            pd.testing.assert_frame_equal(local.reset_index(drop=True), found.reset_index(drop=True), check_dtype=False)
        # a bundle retrained into the same folder is shipped anew
        shutil.rmtree(first)
        shutil.copytree(other, first)
        local = export_at_risk(ModelBundle.load(first), min_risk=0.2)
        found = export_at_risk_spark(first, min_risk=0.2, spark=spark).toPandas()[list(local.columns)]
        pd.testing.assert_frame_equal(local.reset_index(drop=True), found.reset_index(drop=True), check_dtype=False)
    finally:
        spark.stop()
