"""Load and validate The Complete Journey from Parquet: wall time and peak memory.

Target: under 10 s and under 2 GiB peak on the 2-core machine. Each measurement runs in a
fresh process so that its peak resident memory is its own.

    python benchmarks/data_loading.py [--data DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from recsys.data import load_dataset
t1 = time.perf_counter()
ds = load_dataset(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_validate_s": t2 - t1,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "transactions": len(ds.transactions)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an imported Complete Journey directory (imported to a temp dir if absent)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = str(Path(tmp) / "cj")
            subprocess.run(
                [sys.executable, "-m", "recsys", "data", "import-completejourney", "--out", data],
                check=True,
                capture_output=True,
            )
        runs = [
            json.loads(
                subprocess.run([sys.executable, "-c", CHILD, data], check=True, capture_output=True, text=True).stdout
            )
            for _ in range(args.repeat)
        ]
    best = min(r["load_validate_s"] for r in runs)
    peak = max(r["peak_rss_mib"] for r in runs)
    print(f"dataset: The Complete Journey ({runs[0]['transactions']:,} transactions), Parquet")
    each = ", ".join(f"{r['load_validate_s']:.2f}" for r in runs)
    print(f"load + validate: best {best:.2f} s of {args.repeat} (all: {each})  target < 10 s")
    print(f"peak resident memory: {peak:.0f} MiB  target < 2048 MiB")


if __name__ == "__main__":
    main()
