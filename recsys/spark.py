"""Spark, where the library's jobs run beyond one machine: the session, and Parquet datasets
written whole.

``spark_session`` joins the active session, the JVM ``spark-submit`` started, or starts one on
``RECSYS_SPARK_MASTER`` (default ``local[2]``: this machine's two cores). pyspark is imported
only here and only when called: it is the ``spark`` extra, not a dependency of the library.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def spark_session(app_name: str = "recsys"):
    """The active Spark session, or a new one on RECSYS_SPARK_MASTER (default local[2])."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this environment's Python
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", os.environ.get("RECSYS_SPARK_UI", "false"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")  # progress bars would fill the job's log
        .config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
        # the driver turns the customers and their events into Spark frames: Spark's default 1g
        # heap ran out at a million customers in local mode (RECSYS_SPARK_DRIVER_MEMORY to change)
        .config("spark.driver.memory", os.environ.get("RECSYS_SPARK_DRIVER_MEMORY", "4g"))
    )
    # Under spark-submit the driver joins the JVM spark-submit started (PYSPARK_GATEWAY_PORT),
    # whose --master holds; otherwise this machine unless RECSYS_SPARK_MASTER names a cluster.
    submitted = bool(os.environ.get("PYSPARK_GATEWAY_PORT"))
    master = os.environ.get("RECSYS_SPARK_MASTER") or (None if submitted else "local[2]")
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


def write_dataset(frame, out: str | Path) -> int:
    """``frame`` as a Parquet dataset at ``out``: written beside it, then renamed over it (a local
    path), so an interrupted job leaves the earlier export whole; on a cluster's storage Spark's
    own commit (the ``_SUCCESS`` marker) marks a finished dataset. Returns the rows written."""
    import shutil
    import uuid

    out = str(out)
    remote = "://" in out and not out.startswith("file://")
    target = out if remote else str(Path(out).resolve())
    stage = target if remote else f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    frame.write.mode("overwrite").parquet(stage)
    rows = frame.sparkSession.read.parquet(stage).count()
    if not remote:
        old = Path(target)
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
        os.replace(stage, target)
    return rows


def stop_spark(spark) -> None:
    """Stop ``spark`` and end the JVM this process started for it: ``SparkSession.stop`` leaves
    the driver's JVM, and its heap, running for the life of the Python process (at ten times The
    Complete Journey, 2 GiB held through the rest of a training run). A JVM that ``spark-submit``
    started is left to it."""
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is None or os.environ.get("PYSPARK_GATEWAY_PORT"):
        return
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    SparkContext._gateway = SparkContext._jvm = None
    if proc is not None:  # the JVM ends when its standard input closes (PythonGatewayServer)
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
