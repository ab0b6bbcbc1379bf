"""Batch exports of the champion from the shell, timed end to end (start-up, model, data,
ranking, writing), with the peak memory of the process.

Target (issue): exporting The Complete Journey in under 10 s.

    python benchmarks/exports.py [--model models:/loyalty-offers@champion] [--repeat 3]

Run it where `make run` trained the champion (./mlflow.db), or set MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recsys import constants as C

BIN = Path(sys.executable).parent


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of this run, its last line of output)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource use
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read().decode()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode().strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=C.CHAMPION_URI)
    parser.add_argument("--as-of", default="2018-01-01")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="bench-exports-"))
    commands = {
        "export offers (k 5, email, CSV)": [
            str(BIN / "recsys"),
            "export",
            "offers",
            "--k",
            "5",
            "--channel",
            "email",
            "--as-of",
            args.as_of,
            "--model",
            args.model,
            "--out",
            str(out / "offers.csv"),
        ],
        "export offers (k 5, Parquet)": [
            str(BIN / "recsys"),
            "export",
            "offers",
            "--k",
            "5",
            "--as-of",
            args.as_of,
            "--model",
            args.model,
            "--out",
            str(out / "offers.parquet"),
        ],
        "export at-risk (min risk 0.5)": [
            str(BIN / "recsys"),
            "export",
            "at-risk",
            "--min-risk",
            "0.5",
            "--model",
            args.model,
            "--out",
            str(out / "at_risk.csv"),
        ],
    }
    for name, command in commands.items():
        runs = [timed(command) for _ in range(args.repeat)]
        walls = sorted(r[0] for r in runs)
        print(
            f"{name:32s} median {walls[len(walls) // 2]:5.2f} s  max {walls[-1]:5.2f} s  "
            f"peak RSS {max(r[1] for r in runs):6.0f} MB  (target < 10 s)  {runs[-1][2]}"
        )


if __name__ == "__main__":
    main()
