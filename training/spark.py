"""``recsys train --engine spark``: the purchase history's reductions on a Spark cluster, read
back by the local fit.

The lines are reduced on the cluster (:mod:`recsys.customers.history_spark`) to the tables
the customer features, churn snapshots and segmentation read; they are written as Parquet to
``--aggregates`` (a path the cluster and this machine both reach; by default a temporary
directory, removed after the run) and read into the :class:`PurchaseHistory` the local stages
fit on. docs/scale.md says what still runs on this machine.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from recsys.customers.history import PurchaseHistory
from recsys.data import Dataset
from recsys.errors import DataSourceError
from training.config import TrainConfig
from training.tracking import Tracker


def history_on_spark(cfg: TrainConfig, ds: Dataset, track: Tracker) -> PurchaseHistory:
    """The purchase history of ``cfg.data``, reduced on Spark."""
    from pyspark.sql import SparkSession

    from recsys.customers.history_spark import write_history_spark
    from recsys.spark import spark_session, stop_spark

    data = Path(str(cfg.data))
    if "://" in str(cfg.data) or not data.is_dir():
        raise DataSourceError(f"{cfg.data}: --engine spark reads a directory of Parquet files, and this is not one")
    temporary = None if cfg.aggregates else Path(tempfile.mkdtemp(prefix="recsys-aggregates-"))
    out = Path(cfg.aggregates) if cfg.aggregates else temporary / "history"
    ours = SparkSession.getActiveSession() is None
    spark = spark_session("recsys-train")
    try:
        meta = write_history_spark(spark, data, out)
        track.log_params({"engine": "spark", "spark_master": spark.sparkContext.master}, parent=False)
        track.log_metrics({f"aggregates_{name}_rows": rows for name, rows in meta["rows"].items()})
        return PurchaseHistory.read(
            out, like=ds.transactions, products=ds.products, customers=ds.customers, offer_events=ds.offer_events
        )
    finally:
        if ours:
            stop_spark(spark)
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
