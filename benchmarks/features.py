"""Customer features on the whole Complete Journey, and BG/NBD fitting on 10k customers.

Targets: features under 5 s; BG/NBD on 10,000 customers under 2 s.

    python benchmarks/features.py [--data DIR]
"""

from __future__ import annotations

import argparse
import time

from recsys.customers.bgnbd import BGNBD, rfm_summary
from recsys.customers.features import build_features
from recsys.data import load_dataset
from recsys.data.completejourney import build_tables
from recsys.data.synthetic import generate
from recsys.data.validate import validate_tables


def best_of(n: int, fn):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an imported Complete Journey directory (built in memory if absent)")
    args = parser.parse_args()
    if args.data:
        ds = load_dataset(args.data)
        tables = ds.tables()
    else:
        tables, _ = validate_tables(build_tables())
    as_of = tables["transactions"]["timestamp"].max().normalize()
    seconds, features = best_of(
        3,
        lambda: build_features(
            tables["transactions"],
            as_of,
            products=tables["products"],
            customers=tables["customers"],
            offer_events=tables["offer_events"],
        ),
    )
    print(
        f"features, The Complete Journey ({len(features):,} customers, "
        f"{len(tables['transactions']):,} lines): {seconds:.2f} s  target < 5 s"
    )

    synth, _ = generate(customers=10_000, products=1_000, seed=1)
    summary = rfm_summary(synth["transactions"], "2025-01-01")
    seconds, model = best_of(3, lambda: BGNBD().fit(summary))
    print(
        f"BG/NBD fit, {len(summary):,} customers: {seconds:.3f} s  target < 2 s  "
        f"(r={model.params_['r']:.3f}, alpha={model.params_['alpha']:.3f}, a={model.params_['a']:.3f}, "
        f"b={model.params_['b']:.3f})"
    )


if __name__ == "__main__":
    main()
