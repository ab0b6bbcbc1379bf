"""Lift against randomised control groups: coverage and power on planted effects, and the
Hillstrom e-mail experiment beside its plain differences of means.

1. Coverage: the synthetic generator's randomised campaigns (recsys.data.synthetic_experiments)
   over many seeds, through the whole path: events and transactions -> experiment table -> lift.
   Each seed plants heterogeneous effects; the planted average effect of a campaign is the mean
   of its customers' effects. Reported: the share of 95% intervals that cover it (target: about
   95%), for total spend, visits and redemptions, with and without the CUPED adjustment.
2. Power: the share of seeds whose interval of total-spend lift lies above 0, at several
   effect strengths (and so average effects in dollars), with the customers per campaign shown.
3. Hillstrom: the lift function's difference of means and Welch interval per e-mail and outcome,
   beside the plain difference of means computed here from the file.

    python benchmarks/lift.py [--seeds 200] [--customers 1500] [--hillstrom PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.data.dataset import Dataset
from recsys.data.synthetic import generate
from recsys.data.validate import validate_tables
from recsys.incrementality import experiment_table, lift_table, load_hillstrom

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = {"total_spend": "effect_total_spend", "visits": "effect_visits", "redemptions": "effect_redemptions"}


def one_seed(seed: int, customers: int, effect: float, covariate: str | None = None) -> pd.DataFrame:
    """Per randomised campaign of one generated dataset: the lift table row and the planted averages."""
    tables, truth = generate(customers=customers, products=120, seed=seed, experiments=2, experiment_effect=effect)
    ds = Dataset(**validate_tables(tables)[0])
    events = ds.offer_events[ds.offer_events[C.OFFER_ID].str.startswith("OX")]
    e = experiment_table(ds.transactions, events, ds.offers, products=ds.products)
    table = lift_table(e, covariate=covariate).set_index("group")
    planted = truth["experiment_effects"].groupby(C.OFFER_ID)[list(OUTCOMES.values())].mean()
    return table.join(planted)


def coverage(seeds: int, customers: int) -> None:
    for covariate in (None, "pre_spend"):
        t = time.perf_counter()
        rows = pd.concat([one_seed(s, customers, 2.0, covariate) for s in range(seeds)])
        label = "CUPED on pre-period spend" if covariate else "plain difference of means"
        print(f"coverage of the planted average effect, {len(rows)} campaigns ({seeds} seeds x 2), {label}:")
        for outcome, effect in OUTCOMES.items():
            inside = (rows[f"{outcome}_lift_low"] <= rows[effect]) & (rows[effect] <= rows[f"{outcome}_lift_high"])
            width = (rows[f"{outcome}_lift_high"] - rows[f"{outcome}_lift_low"]).mean()
            sd = np.sqrt(0.95 * 0.05 / len(rows))
            print(
                f"  {outcome:12s} {inside.mean():6.1%} (target 95%, +/- {2 * sd:.1%} by chance); "
                f"mean interval width {width:.3f}; mean planted effect {rows[effect].mean():.3f}"
            )
        print(f"  ({time.perf_counter() - t:.0f} s)")


def power(seeds: int, customers: int) -> None:
    print(f"power: share of campaigns whose 95% interval of total-spend lift lies above 0 ({seeds} seeds x 2)")
    for effect in (0.0, 2.0, 6.0, 16.0):
        rows = pd.concat([one_seed(1000 + s, customers, effect) for s in range(seeds)])
        n = (rows["treated"] + rows["control"]).mean()
        detected = (rows["total_spend_lift_low"] > 0).mean()
        print(
            f"  effect strength {effect:3.1f}: average planted effect ${rows['effect_total_spend'].mean():5.2f} "
            f"per customer, {n:,.0f} customers per campaign: detected {detected:.0%}"
        )


def detectable(seeds: int, customers: int) -> None:
    """The smallest lift in total spend detected 80% of the time (two-sided 5%, half the customers
    held back), from the spread of 14-day spend in the generator's experiments, and a check of it
    by simulation: draws of that spread with the effect added."""
    rows = pd.concat([one_seed(2000 + s, customers, 0.0) for s in range(max(seeds // 10, 3))])
    sd = float(
        np.sqrt(
            (rows["total_spend_lift_high"] - rows["total_spend_lift_low"]) ** 2
            / (2 * 1.96) ** 2
            * (rows["treated"] * rows["control"] / (rows["treated"] + rows["control"]))
        ).mean()
    )
    print(f"smallest detectable lift (80% power, 5% two-sided, 50% control), 14-day spend sd ${sd:.0f}:")
    rng = np.random.default_rng(0)
    for n in (1_000, 10_000, 100_000, 1_000_000):
        mde = 2.8 * sd * np.sqrt(4 / n)
        hits = []
        if n <= 10_000:
            for _ in range(400):
                t, c = rng.gamma(0.6, sd / np.sqrt(0.6), n // 2) + mde, rng.gamma(0.6, sd / np.sqrt(0.6), n // 2)
                frame = pd.DataFrame(
                    {
                        "group": "x",
                        "arm": ["treated"] * len(t) + ["control"] * len(c),
                        "total_spend": np.r_[t, c],
                        "offer_spend": 0.0,
                        "visits": 0,
                        "redemptions": 0,
                    }
                )
                hits.append(lift_table(frame, margin=1.0).iloc[0]["total_spend_lift_low"] > 0)
        check = f"; simulated power {np.mean(hits):.0%}" if hits else ""
        print(f"  {n:>9,} customers: ${mde:6.2f} per customer{check}")


def hillstrom(path: Path) -> None:
    if not path.exists():
        print(f"Hillstrom: {path} is absent, skipped")
        return
    raw = pd.read_csv(path)
    table = lift_table(
        load_hillstrom(path), outcomes=("visit", "conversion", "spend"), revenue="spend", margin=1.0
    ).set_index("group")
    none = raw[raw["segment"] == "No E-Mail"]
    print("Hillstrom e-mail experiment (randomised): lift against No E-Mail, 95% Welch interval")
    for email in ("Mens E-Mail", "Womens E-Mail"):
        mail = raw[raw["segment"] == email]
        for outcome in ("visit", "conversion", "spend"):
            plain = mail[outcome].mean() - none[outcome].mean()
            r = table.loc[email]
            print(
                f"  {email:14s} {outcome:10s} lift {r[f'{outcome}_lift']:+.4f} "
                f"[{r[f'{outcome}_lift_low']:+.4f}, {r[f'{outcome}_lift_high']:+.4f}]  "
                f"plain difference of means {plain:+.4f}  relative {r[f'{outcome}_relative_lift']:+.1%}"
            )
        print(f"  {email:14s} verdict (margin 100%, no discount): {table.loc[email, 'verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--customers", type=int, default=1500)
    default = ROOT.parent / "shared" / "data" / "hillstrom" / "hillstrom.csv"
    parser.add_argument("--hillstrom", type=Path, default=default)
    args = parser.parse_args()
    hillstrom(args.hillstrom)
    coverage(args.seeds, args.customers)
    power(max(args.seeds // 4, 10), args.customers)
    detectable(args.seeds, args.customers)


if __name__ == "__main__":
    main()
