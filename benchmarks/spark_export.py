"""The offers export on Spark (local mode on this machine) for a million customers: wall time,
and a sample of them checked against the local export.

The model is a bundle directory (``--bundle``; default: one trained here on the synthetic
generator's data, 20,000 customers). The customers to rank are the model's own and new ids up
to ``--customers`` (new customers get the cold-start ranking, as in the service). The local
export ranks a random sample of them (``--sample``) and every row must match Spark's.

    python benchmarks/spark_export.py [--customers 1000000] [--bundle DIR] [--sample 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
KEY = ["customer_id", "rank"]


def _bundle(work: Path) -> tuple[Path, Path]:
    """A bundle trained on synthetic data (20,000 customers) and its data directory."""
    from recsys.data.sources import write_tables
    from recsys.data.synthetic import generate
    from training.config import TrainConfig
    from training.pipeline import train

    tables, _ = generate(customers=20_000, products=400, seed=5)
    write_tables(tables, work / "data")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    config = TrainConfig(data=str(work / "data"), horizon_days=30, min_campaign_offers=5, until="package")
    return train(config).bundle.save(work / "model"), work / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--data", default=None, help="catalog and offer events (default: the bundle's training data)")
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    from inference.exports import read_offer_tables
    from inference.spark import export_offers_spark
    from recsys.bundle import ModelBundle
    from recsys.spark import spark_session, write_dataset

    work = Path(tempfile.mkdtemp(prefix="spark-export-"))
    if args.bundle:
        bundle_dir, data = Path(args.bundle), args.data
    else:
        print("training a bundle on synthetic data (20,000 customers) ...", flush=True)
        bundle_dir, data = _bundle(work)
    bundle = ModelBundle.load(bundle_dir)
    data = data or bundle.config.get("data_source")
    catalog, events = read_offer_tables(str(data)) if data else (None, None)
    catalog = catalog if catalog is not None else bundle.catalog
    as_of = catalog["start_date"].max()
    known = bundle.customers.index
    ids = known.tolist()[: args.customers]
    ids += [
        f"new-{i}" if not isinstance(known[0], (int, np.integer)) else 10**12 + i
        for i in range(args.customers - len(ids))
    ]
    customers = pd.DataFrame({"customer_id": ids})
    print(f"{len(customers):,} customers ({len(known):,} known to the model), {len(catalog):,} offers", flush=True)

    spark = spark_session()
    t = time.perf_counter()
    offers, _ = export_offers_spark(
        bundle_dir,
        customers=customers,
        events=events,
        catalog=catalog,
        k=args.k,
        as_of=as_of,
        decided_at=as_of,
        spark=spark,
    )
    rows = write_dataset(offers, work / "offers.parquet")
    wall = time.perf_counter() - t
    print(
        f"Spark (master {spark.sparkContext.master}, {spark.sparkContext.defaultParallelism} cores): "
        f"{rows:,} rows for {len(customers):,} customers in {wall:.0f} s ({len(customers) / wall:,.0f} customers/s)"
    )

    _check_sample(bundle, ids, catalog, events, as_of, work, args)


def _check_sample(bundle, ids, catalog, events, as_of, work, args) -> None:
    """The local export of a random sample of the customers, against Spark's rows for them."""
    from inference.exports import export_decisions

    rng = np.random.default_rng(0)
    sample = pd.Index(rng.choice(np.asarray(ids, dtype=object), size=min(args.sample, len(ids)), replace=False))
    t = time.perf_counter()
    local, _ = export_decisions(
        bundle, k=args.k, as_of=as_of, catalog=catalog, events=events, decided_at=as_of, customers=sample
    )
    local_s = time.perf_counter() - t
    got = pd.read_parquet(work / "offers.parquet", filters=None)
    got = got[got["customer_id"].isin(sample)][list(local.columns)]
    a = local.sort_values(KEY).reset_index(drop=True)
    b = got.sort_values(KEY).reset_index(drop=True)
    same = len(a) == len(b) and all(
        np.allclose(a[c], b[c], equal_nan=True)
        if pd.api.types.is_float_dtype(a[c])
        else (_text(a[c]) == _text(b[c])).all()
        for c in a.columns
    )
    print(
        f"local export of {len(sample):,} sampled customers: {len(a):,} rows in {local_s:.1f} s; "
        f"Spark's rows for them: {len(b):,}; identical: {same}"
    )


def _text(column: pd.Series) -> np.ndarray:
    """Values as text, every kind of missing value (None, NaN, pd.NA) as one: a text column read
    back from Spark's Parquet holds NaN where the local frame's string column holds <NA>, and
    pandas' astype(str) keeps a missing value missing (never equal to another)."""
    return np.array([MISSING if _missing(v) else str(v) for v in column.tolist()], dtype=object)


MISSING = "\x00missing"


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


if __name__ == "__main__":
    main()
