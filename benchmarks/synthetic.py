"""Generate 10k customers (about 1M transaction lines) and write them: wall time.

Target: under 30 s on the 2-core machine.

    python benchmarks/synthetic.py [--customers N] [--products M]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from recsys.data.sources import write_tables
from recsys.data.synthetic import TRUTH_DIR, generate
from recsys.data.validate import validate_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=2_000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    tables, truth = generate(customers=args.customers, products=args.products, seed=1)
    t1 = time.perf_counter()
    valid, _ = validate_tables(tables)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_tables(valid, Path(tmp) / "synth", extras={TRUTH_DIR: truth})
    t3 = time.perf_counter()
    print(
        f"customers {args.customers:,}, transactions {len(tables['transactions']):,}, "
        f"events {len(tables['offer_events']):,}"
    )
    print(
        f"generate {t1 - t0:.2f} s, validate {t2 - t1:.2f} s, write {t3 - t2:.2f} s; "
        f"total {t3 - t0:.2f} s  target < 30 s"
    )


if __name__ == "__main__":
    main()
