"""Offer ranking on The Complete Journey: the development campaign benchmark and ranking speed.

For each development campaign (8 and 13; campaign 18 is held back and refused), everything is
fitted on data before the campaign's first send, and each redeeming household's campaign
coupons are ranked (recsys.offers.campaigns). Target (issue): the engine beats personal history by
at least 5% relative in recall@10 on both campaigns. Speed targets: ranking 200 offers for one
customer under 2 ms; every household x 200 offers under 2 s; ALS training under 30 s.

    python benchmarks/offers.py [--data DIR]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recsys import constants as C
from recsys.cf import ALSRecommender
from recsys.data import load_dataset
from recsys.data.completejourney import build_tables
from recsys.data.dataset import Dataset
from recsys.data.validate import validate_tables
from recsys.offers import EventArrays, OfferRanker
from recsys.offers.campaigns import campaign_frame, evaluate_campaign


def _campaign(ds, campaign, n_boot: int) -> None:
    """Every ranker's recall, NDCG and hit on one development campaign, and the engine's gain."""
    t = time.perf_counter()
    r = evaluate_campaign(ds, campaign)
    m = r.metrics
    recall = C.at_k("recall")
    gain = m.loc["engine", recall] / m.loc["personal_history", recall] - 1
    print(
        f"campaign {campaign} (first send {r.start:%Y-%m-%d}): {r.households} redeeming households, "
        f"{r.offers} coupons; redemption model trained on {r.training_examples:,} past sends "
        f"({r.training_redemptions} redeemed); {time.perf_counter() - t:.1f} s"
    )
    print(m.round(4).to_string())
    _, lo, hi = r.gain_interval(n_boot=n_boot)
    print(
        f"engine vs personal history, recall@10: {gain:+.1%} (target >= +5%); 95% paired bootstrap "
        f"interval over households [{lo:+.1%}, {hi:+.1%}]\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an imported Complete Journey directory (built in memory if absent)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for the interval of the gain")
    args = parser.parse_args()
    ds = load_dataset(args.data) if args.data else Dataset(**validate_tables(build_tables())[0])

    for campaign in C.CJ_DEV_CAMPAIGNS:
        _campaign(ds, campaign, args.bootstrap)

    t = time.perf_counter()
    ALSRecommender().fit(ds.transactions)
    print(f"ALS training on all {len(ds.transactions):,} lines: {time.perf_counter() - t:.1f} s (target < 30 s)")

    start, offer_ids, _ = campaign_frame(ds.offer_events, 13)
    catalog = ds.offers.set_index(C.OFFER_ID).loc[offer_ids].reset_index().head(200)
    t = time.perf_counter()
    ranker = OfferRanker().fit(ds, as_of=start)
    print(f"ranker fit as of {start:%Y-%m-%d}: {time.perf_counter() - t:.1f} s")
    customers = ranker.snapshot_.customer_map.ids
    events = ds.offer_events[ds.offer_events[C.TIMESTAMP] < start]
    t = time.perf_counter()
    prepared = ranker.prepare(catalog)
    print(f"catalog of {len(catalog)} offers prepared once: {(time.perf_counter() - t) * 1e3:.0f} ms")
    by_customer = {
        c: EventArrays.from_frame(g) for c, g in events.groupby(C.CUSTOMER_ID)
    }  # as an event store returns them
    rng = np.random.default_rng(0)
    sample = rng.choice(customers.to_numpy(), 200, replace=False)
    ranker.rank(sample[0], prepared, as_of=start, k=10, events=by_customer.get(sample[0]))  # warm-up
    times = []
    for cid in sample:
        own = by_customer.get(cid)
        t = time.perf_counter()
        ranker.rank(cid, prepared, as_of=start, k=10, events=own)
        times.append(time.perf_counter() - t)
    print(
        f"one customer x {len(catalog)} offers: median {np.median(times) * 1e3:.2f} ms, "
        f"p99 {np.percentile(times, 99) * 1e3:.2f} ms (target < 2 ms)"
    )
    t = time.perf_counter()
    out = ranker.rank_many(customers, prepared, as_of=start, k=10, events=events)
    print(
        f"all {len(customers):,} households x {len(catalog)} offers: {time.perf_counter() - t:.2f} s "
        f"(target < 2 s); {len(out):,} rows"
    )


if __name__ == "__main__":
    main()
