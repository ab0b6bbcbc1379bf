"""The purchase history's reductions on Spark: what ``PurchaseHistory.of`` computes from the
lines, computed on a cluster from a Parquet dataset and written as Parquet for the local fit.

The lines never reach the driver: Spark reads ``transactions.parquet`` (a file or a dataset
directory) and ``products.parquet``, groups them into the three tables that grow with the lines
(``baskets``, ``first_bought``, ``departments``; see :mod:`recsys.customers.history`) and
writes them to one directory, with ``history.json`` saying what they hold. The offer events,
the sign-up dates and everything else the features read are small and stay local.
:meth:`recsys.customers.history.PurchaseHistory.read` reads the directory back.

The same reductions as the local ones (in DuckDB), group for group (``tests/test_history_spark.py``
compares the tables and the features computed from them on the same data).
"""

from __future__ import annotations

import json
from pathlib import Path

from recsys import constants as C
from recsys.errors import DataSourceError
from recsys.io import atomic_directory

HISTORY_FORMAT = 1


def _table_path(data_dir: Path, name: str) -> Path:
    path = data_dir / f"{name}.parquet"
    if not path.exists():
        raise DataSourceError(
            f"{data_dir}: no {name}.parquet; the purchase history on Spark reads a directory of Parquet "
            f"files (a file or a dataset directory per table), as `recsys data import-*` writes"
        )
    return path


def history_tables_spark(spark, data_dir: str | Path) -> tuple[dict, dict]:
    """(Spark DataFrames by table name, what they hold) for the dataset at ``data_dir``."""
    from pyspark.sql import functions as F

    data_dir = Path(data_dir)
    # Nanosecond timestamps (what pandas writes) are read as their integer nanoseconds: Spark's
    # own timestamps stop at microseconds. Minima of the integers are the minima of the times,
    # and the reader turns them back into timestamps.
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    tx = spark.read.parquet(str(_table_path(data_dir, C.TRANSACTIONS)))
    missing = [c for c in (C.CUSTOMER_ID, C.PRODUCT_ID, C.TIMESTAMP) if c not in tx.columns]
    if missing:
        raise DataSourceError(f"{data_dir / 'transactions.parquet'}: no column(s) {', '.join(missing)}")
    has_discount = C.DISCOUNT in tx.columns
    amount = F.col(C.AMOUNT).cast("double") if C.AMOUNT in tx.columns else F.lit(0.0)
    positive = F.greatest(amount, F.lit(0.0))
    key = C.BASKET_ID if C.BASKET_ID in tx.columns else C.TIMESTAMP
    parts = [
        F.min(C.TIMESTAMP).alias("time"),
        F.sum(amount).alias("spend"),
        F.sum(positive).alias("positive"),
    ]
    if has_discount:
        parts.append(F.sum(F.when(F.col(C.DISCOUNT) > 0, positive).otherwise(F.lit(0.0))).alias("discounted"))
    baskets = tx.groupBy(C.CUSTOMER_ID, F.col(key).alias("_key")).agg(*parts).drop("_key")

    products_path = data_dir / f"{C.PRODUCTS}.parquet"
    products = spark.read.parquet(str(products_path)) if products_path.exists() else None
    by_category = products is not None and C.CATEGORY in products.columns
    if by_category:
        lines = tx.select(C.CUSTOMER_ID, C.PRODUCT_ID, C.TIMESTAMP).join(_attribute(products, C.CATEGORY), C.PRODUCT_ID)
        first_key = F.col(C.CATEGORY)
    else:
        lines, first_key = tx, F.col(C.PRODUCT_ID)
    first = lines.groupBy(C.CUSTOMER_ID, first_key.alias("_key")).agg(F.min(C.TIMESTAMP).alias("first"))
    tables = {"baskets": baskets, "first_bought": first.select(C.CUSTOMER_ID, "first")}
    if products is not None and C.DEPARTMENT in products.columns and C.AMOUNT in tx.columns:
        lines = tx.select(C.CUSTOMER_ID, C.PRODUCT_ID, C.TIMESTAMP, amount.alias("_amount")).join(
            _attribute(products, C.DEPARTMENT), C.PRODUCT_ID
        )
        tables["departments"] = lines.groupBy(C.CUSTOMER_ID, C.DEPARTMENT, F.col(C.TIMESTAMP).alias("time")).agg(
            F.sum("_amount").alias("amount"),
            F.sum(F.when(F.col("_amount") > 0, F.col("_amount")).otherwise(F.lit(0.0))).alias("positive"),
        )
    meta = {
        "format": HISTORY_FORMAT,
        "has_discount": has_discount,
        "breadth_of": "category" if by_category else "product",
        "tables": sorted(tables),
    }
    return tables, meta


def _attribute(products, column: str):
    """product_id -> ``column`` for the products that name one (one value per product)."""
    from pyspark.sql import functions as F

    named = products.select(C.PRODUCT_ID, column).where(F.col(column).isNotNull())
    return named.groupBy(C.PRODUCT_ID).agg(F.min(column).alias(column))


def write_history_spark(spark, data_dir: str | Path, out: str | Path) -> dict:
    """The history tables of ``data_dir`` written under ``out`` (a local directory: written beside
    it and renamed over it, so a reader never sees a part). Returns ``history.json``'s content,
    with the rows of each table."""
    tables, meta = history_tables_spark(spark, data_dir)
    rows = {}
    with atomic_directory(Path(out).resolve()) as stage:
        for name, frame in tables.items():
            frame.write.parquet(str(stage / f"{name}.parquet"))
            rows[name] = spark.read.parquet(str(stage / f"{name}.parquet")).count()
        meta = {**meta, "rows": rows}
        (stage / "history.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
