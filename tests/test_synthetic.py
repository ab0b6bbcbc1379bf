"""The synthetic generator: deterministic per seed, with the planted structure really there."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.synthetic import SEGMENT_NAMES, generate
from recsys.data.validate import validate_tables
from tests.conftest import frames_equal


def test_same_seed_same_data():
    a, truth_a = generate(customers=150, products=60, seed=3)
    b, truth_b = generate(customers=150, products=60, seed=3)
    for name in a:
        frames_equal(a[name], b[name])
    for name in truth_a:
        frames_equal(truth_a[name], truth_b[name])


def test_other_seed_other_data():
    a, _ = generate(customers=150, products=60, seed=3)
    b, _ = generate(customers=150, products=60, seed=4)
    assert not a["transactions"]["amount"].equals(b["transactions"]["amount"])


def test_generated_data_is_valid(synth):
    tables, _ = synth
    frames, warnings = validate_tables(tables)
    assert warnings == []
    assert set(frames) == {"transactions", "products", "customers", "offers", "offer_events"}


def test_segments_prefer_their_department(synth):
    tables, truth = synth
    tx = tables["transactions"].merge(tables["products"], on="product_id").merge(truth["customers"], on="customer_id")
    share = pd.crosstab(
        tx["segment_name"], tx["department"], values=tx["amount"].clip(lower=0), aggfunc="sum", normalize="index"
    )
    for segment, row in share.iterrows():
        preferred = (
            truth["customers"].loc[truth["customers"]["segment_name"] == segment, "preferred_department"].iloc[0]
        )
        assert row.idxmax() == preferred
        assert row.max() > 0.5
    assert set(share.index) == set(SEGMENT_NAMES)


def test_churners_stop_buying_at_their_churn_date(synth):
    tables, truth = synth
    last = tables["transactions"].groupby("customer_id")["timestamp"].max()
    t = truth["customers"].set_index("customer_id")
    churners = t[t["churned"]]
    assert len(churners) > 30
    assert (last[churners.index] <= churners["churn_date"] + pd.Timedelta(days=1)).all()
    # Customers who stay keep buying until the last weeks of the year.
    stayers = t[~t["churned"]].index
    assert (last[stayers] > pd.Timestamp("2024-10-01")).mean() > 0.95


def test_redemptions_follow_planted_affinity(synth):
    tables, truth = synth
    ev = tables["offer_events"]
    sent = ev[ev["event"] == "sent"][["customer_id", "offer_id"]]
    redeemed = ev[ev["event"] == "redeemed"][["customer_id", "offer_id"]].assign(redeemed=1)
    pairs = sent.merge(redeemed, how="left").fillna({"redeemed": 0}).merge(truth["offer_affinity"])
    high = pairs["affinity"] > pairs["affinity"].quantile(0.8)
    low = pairs["affinity"] < pairs["affinity"].quantile(0.5)
    assert pairs.loc[high, "redeemed"].mean() > 3 * pairs.loc[low, "redeemed"].mean()
    assert np.corrcoef(pairs["affinity"], pairs["redeemed"])[0, 1] > 0.2


def test_default_scale_gives_about_a_hundred_lines_per_customer():
    tables, _ = generate(customers=1000, products=200, seed=1)
    per_customer = len(tables["transactions"]) / 1000
    assert 80 <= per_customer <= 130
