"""The purchase history reduced on Spark (local mode) is the one reduced in pandas: the same
tables, the same customer features, and `recsys train --engine spark` the same models."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.customers import customer_profile_and_bgnbd
from recsys.customers.history import PurchaseHistory
from recsys.data import load_dataset

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java on the PATH"),
]
RECSYS = str(Path(sys.executable).with_name("recsys"))


@pytest.fixture(scope="module")
def spark():
    import os

    from recsys.spark import spark_session

    os.environ.setdefault("RECSYS_SPARK_MASTER", "local[2]")
    session = spark_session("recsys-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def both(spark, synth_dir, tmp_path_factory):
    """(pandas history, Spark history, dataset) of the small synthetic dataset."""
    from recsys.customers.history_spark import write_history_spark

    ds = load_dataset(synth_dir)
    out = tmp_path_factory.mktemp("aggregates") / "history"
    meta = write_history_spark(spark, synth_dir, out)
    assert meta["rows"]["baskets"] > 0
    assert [p.name for p in out.parent.iterdir()] == ["history"]  # staged beside it, renamed whole
    local = PurchaseHistory.of(ds.transactions, ds.products, ds.customers, ds.offer_events)
    read = PurchaseHistory.read(
        out, like=ds.transactions, products=ds.products, customers=ds.customers, offer_events=ds.offer_events
    )
    return local, read, ds


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("table", ["baskets", "first_bought", "departments", "events"])
def test_spark_reduces_the_lines_to_the_same_tables(both, table):
    local, read, _ = both
    a, b = getattr(local, table), getattr(read, table)
    assert a is not None and len(a) > 0
    pd.testing.assert_frame_equal(_canonical(a), _canonical(b), check_exact=False, rtol=1e-9)
    time = {"baskets": "time", "first_bought": "first"}.get(table, "time")
    assert b[time].is_monotonic_increasing  # sorted by time, so that a cut is a slice
    assert (local.has_discount, local.breadth_of) == (read.has_discount, read.breadth_of)


@pytest.mark.parametrize("when", ["end", "mid-day"])
def test_features_from_the_spark_history_are_the_local_ones(both, when):
    local, read, ds = both
    end = ds.transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
    as_of = end if when == "end" else end - pd.Timedelta(days=40, hours=11)
    a, _ = customer_profile_and_bgnbd(local, as_of, horizon_days=30)
    b, _ = customer_profile_and_bgnbd(read, as_of, horizon_days=30)
    assert len(a) > 100 and np.isfinite(a["p_alive"]).all()
    pd.testing.assert_frame_equal(a, b.loc[a.index, a.columns], check_exact=False, rtol=1e-7)


def test_a_dataset_without_parquet_files_is_refused_by_name(spark, tmp_path):
    from recsys.customers.history_spark import write_history_spark
    from recsys.errors import DataSourceError

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "transactions.csv").write_text("customer_id,product_id,timestamp\n1,2,2020-01-01\n")
    with pytest.raises(DataSourceError, match=r"no transactions\.parquet"):
        write_history_spark(spark, tmp_path / "data", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written, no staging left


def _train(data, tmp_path, *extra):
    import os

    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "RECSYS_SPARK_MASTER": "local[2]",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    command = [RECSYS, "train", "--data", str(data), "--until", "churn", "--horizon-days", "30", "--seed", "3"]
    return subprocess.run([*command, *extra], capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)


def test_train_on_spark_fits_the_models_of_a_local_run(synth_dir, tmp_path):
    local = _train(synth_dir, tmp_path)
    kept = tmp_path / "kept"
    spark = _train(synth_dir, tmp_path, "--engine", "spark", "--aggregates", str(kept))
    assert local.returncode == 0 and spark.returncode == 0, (local.stderr + spark.stderr)[-3000:]

    def metrics(done):
        lines = [line.strip() for line in done.stdout.splitlines() if line.startswith("  churn_")]
        assert len(lines) >= 3, done.stdout
        return lines

    assert metrics(spark) == metrics(local)  # churn model and its baselines, to four decimals
    assert (kept / "history.json").exists() and (kept / "baskets.parquet" / "_SUCCESS").exists()


def test_train_on_spark_refuses_what_it_cannot_read(synth, tmp_path):
    from recsys.data.sources import write_tables

    write_tables(synth[0], tmp_path / "csv", fmt="csv")  # loads locally; Spark reads Parquet only
    done = _train(tmp_path / "csv", tmp_path, "--engine", "spark")
    assert done.returncode == 2 and "no transactions.parquet" in done.stderr, done.stderr[-2000:]
    usage = _train(tmp_path, tmp_path, "--aggregates", str(tmp_path / "a"))
    assert usage.returncode == 2 and "--engine spark" in usage.stderr


def test_stopping_spark_ends_the_jvm_it_started(tmp_path):
    """A training run must not keep the driver's JVM (and its heap) after its Spark part."""
    script = """
from pyspark import SparkContext
from recsys.spark import spark_session, stop_spark
spark = spark_session("stop-test")
assert spark.range(3).count() == 3
jvm = SparkContext._gateway.proc
stop_spark(spark)
print("ended", jvm.poll() is not None)
again = spark_session("stop-test-again")  # a later session starts a JVM of its own
print("again", again.range(4).count())
stop_spark(again)
"""
    import os

    env = {**os.environ, "RECSYS_SPARK_MASTER": "local[1]", "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ended True" in done.stdout and "again 4" in done.stdout
