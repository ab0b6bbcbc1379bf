"""Collaborative filtering on The Complete Journey: next-period quality beside baselines, and speed.

The last 4 weeks are the test period. ALS hyperparameters are chosen on the 4 weeks before
them (recsys.cf.select_als), then ALS is refitted on everything before the test period.
Metrics@10 (docs/offers.md defines them; recall's denominator is every product the customer
bought in the test period): task ``all`` (repeat purchases count) and ``discovery`` (only
products new to the customer; past purchases are not recommended). Target: ALS training on
The Complete Journey under 30 s.

    python benchmarks/cf.py [--data DIR]
"""

from __future__ import annotations

import argparse
import time

from recsys.cf import (
    ALSRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    RepeatPurchaseRecommender,
    evaluate_next_period,
    next_period_split,
    select_als,
)
from recsys.data import load_dataset
from recsys.data.completejourney import build_tables
from recsys.data.dataset import Dataset
from recsys.data.validate import validate_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an imported Complete Journey directory (built in memory if absent)")
    args = parser.parse_args()
    ds = load_dataset(args.data) if args.data else Dataset(**validate_tables(build_tables())[0])
    train, test, cut = next_period_split(ds.transactions, 28)
    t = time.perf_counter()
    best, table = select_als(train)
    print(f"ALS selection on the 4 weeks before {cut:%Y-%m-%d} ({time.perf_counter() - t:.1f} s):")
    print(table.round(4).to_string(index=False))
    print(f"chosen: {best}")
    t = time.perf_counter()
    als = ALSRecommender(**best).fit(train)
    fit_s = time.perf_counter() - t
    models = {
        "popularity": PopularityRecommender().fit(train),
        "repeat_purchase": RepeatPurchaseRecommender().fit(train),
        "item_knn": ItemKNNRecommender().fit(train),
        "als": als,
    }
    t = time.perf_counter()
    r = evaluate_next_period(models, train, test, k=10)
    print(f"\ntest period from {cut:%Y-%m-%d} ({time.perf_counter() - t:.1f} s to evaluate):")
    print(r.round(4).to_string(index=False))
    t = time.perf_counter()
    ALSRecommender(**best).fit(ds.transactions)
    print(
        f"\nALS fit on the training part: {fit_s:.1f} s; on all {len(ds.transactions):,} lines: "
        f"{time.perf_counter() - t:.1f} s (target < 30 s)"
    )


if __name__ == "__main__":
    main()
