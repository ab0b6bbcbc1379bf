"""The data of the scale benchmark (benchmarks/scale.py): n copies of The Complete Journey under
new ids, or the synthetic generator's data of a given size, each written once under its
directory (``_done`` marks a finished copy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# A copy k's ids are the source's plus k times these: every source id must be below them.
STRIDE = {"customer_id": 10_000, "basket_id": 100_000_000_000, "event_id": 1_000_000}


def replicate(source: Path, dest: Path, copies: int) -> Path:
    """``copies`` copies of the dataset at ``source`` under new customer, basket and event ids,
    written one copy (one row group per copy) at a time: never more than one copy in memory."""
    if (dest / "_done").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in ("transactions", "offer_events", "customers"):
        table = pq.read_table(source / f"{name}.parquet")
        for column, stride in STRIDE.items():
            if column in table.column_names and pa.compute.max(table[column]).as_py() >= stride:
                raise SystemExit(f"{source}: {name}.{column} exceeds {stride:,}; the copies' ids would collide")
        with pq.ParquetWriter(dest / f"{name}.parquet", table.schema) as writer:
            for k in range(copies):
                shifted = table
                for column, stride in STRIDE.items():
                    if column in table.column_names:
                        i = table.column_names.index(column)
                        shifted = shifted.set_column(i, column, pa.compute.add(table[column], k * stride))
                writer.write_table(shifted)
    for name in ("products", "offers"):
        shutil.copy(source / f"{name}.parquet", dest / f"{name}.parquet")
    if (source / "_source").exists():  # the importer's marker: campaign 18 stays held out
        shutil.copytree(source / "_source", dest / "_source")
    (dest / "_done").write_text(str(copies))
    return dest


def synthetic(dest: Path, customers: int) -> Path:
    if (dest / "_done").exists():
        return dest
    from recsys.data.sources import write_tables
    from recsys.data.synthetic import generate

    tables, _ = generate(customers=customers, seed=7)
    write_tables(tables, dest, overwrite=True)
    (dest / "_done").write_text(str(customers))
    return dest
