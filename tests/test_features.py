"""Customer features on hand-computed examples; nothing after as_of leaks in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.customers.features import FEATURE_COLUMNS, build_features, department_shares

AS_OF = pd.Timestamp("2024-03-01")


def tx(rows):
    return pd.DataFrame(
        rows, columns=["customer_id", "product_id", "timestamp", "quantity", "amount", "basket_id", "discount"]
    ).astype({"timestamp": "datetime64[ns]"})


@pytest.fixture
def example():
    transactions = tx(
        [
            # customer A: baskets on Jan 1, Jan 11 (two lines, one discounted), Feb 20
            ("A", 1, "2024-01-01 10:00", 1, 10.0, 1, 0.0),
            ("A", 2, "2024-01-11 09:00", 1, 20.0, 2, 2.0),
            ("A", 3, "2024-01-11 09:00", 2, 10.0, 2, 0.0),
            ("A", 1, "2024-02-20 12:00", 1, 5.0, 3, 0.0),
            # customer B: one basket on Feb 28
            ("B", 3, "2024-02-28 00:00", 1, 8.0, 4, 0.0),
            # after as_of: must not count
            ("A", 2, "2024-03-01 00:00", 1, 99.0, 5, 0.0),
            ("C", 2, "2024-03-05 00:00", 1, 99.0, 6, 0.0),
        ]
    )
    products = pd.DataFrame(
        {"product_id": [1, 2, 3], "category": ["milk", "milk", "bread"], "department": ["DAIRY", "DAIRY", "BAKERY"]}
    )
    events = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B"],
            "offer_id": ["o1", "o2", "o1", "o3", "o1"],
            "event": ["sent", "sent", "redeemed", "sent", "sent"],
            "timestamp": pd.to_datetime(["2024-01-05", "2024-01-05", "2024-01-10", "2024-03-02", "2024-01-05"]),
        }
    )
    return transactions, products, events


def test_hand_computed_features(example):
    transactions, products, events = example
    f = build_features(transactions, AS_OF, products=products, offer_events=events)
    assert list(f.index) == ["A", "B"]
    a = f.loc["A"]
    assert a["recency_days"] == pytest.approx((AS_OF - pd.Timestamp("2024-02-20 12:00")) / pd.Timedelta(days=1))
    assert a["frequency"] == 3
    assert a["monetary_total"] == pytest.approx(45.0)
    assert a["monetary_mean_basket"] == pytest.approx(15.0)
    assert a["tenure_days"] == pytest.approx((AS_OF - pd.Timestamp("2024-01-01 10:00")).total_seconds() / 86400)
    # gaps between purchase days: Jan 1 -> Jan 11 (10), Jan 11 -> Feb 20 (40)
    assert a["gap_mean_days"] == pytest.approx(25.0)
    assert a["gap_std_days"] == pytest.approx(np.std([10, 40], ddof=1))
    assert a["overdue_ratio"] == pytest.approx(a["recency_days"] / 25.0)
    assert a["baskets_30d"] == 1 and a["spend_30d"] == pytest.approx(5.0)
    # last 30 days: 1 basket (Feb 20); the 30 days before: 2 (Jan 1, Jan 11) -> (1 - 2) / 3
    assert a["trend_30d"] == pytest.approx(-1 / 3)
    assert a["baskets_90d"] == 3 and a["trend_90d"] == pytest.approx(1.0)
    assert a["category_breadth"] == 2
    assert a["discount_share"] == pytest.approx(20.0 / 45.0)
    # the event on Mar 2 is after as_of
    assert a["offers_sent"] == 2 and a["offers_redeemed"] == 1 and a["redemption_rate"] == pytest.approx(0.5)
    assert a["favourite_department"] == "DAIRY"

    b = f.loc["B"]
    assert b["frequency"] == 1
    assert np.isnan(b["gap_mean_days"]) and np.isnan(b["overdue_ratio"])
    assert b["favourite_department"] == "BAKERY"
    assert b["redemption_rate"] == 0.0


def test_two_baskets_on_one_day_are_one_visit_for_gaps():
    t = tx(
        [
            ("A", 1, "2024-01-01 09:00", 1, 1.0, 1, 0.0),
            ("A", 1, "2024-01-01 18:00", 1, 1.0, 2, 0.0),
            ("A", 1, "2024-01-08 09:00", 1, 1.0, 3, 0.0),
        ]
    )
    f = build_features(t, AS_OF)
    assert f.loc["A", "frequency"] == 3
    assert f.loc["A", "gap_mean_days"] == pytest.approx(7.0)


def test_nothing_after_as_of_leaks_in(synth):
    tables, _ = synth
    t = tables["transactions"]
    as_of = pd.Timestamp("2024-09-01")
    full = build_features(
        t, as_of, products=tables["products"], customers=tables["customers"], offer_events=tables["offer_events"]
    )
    past_only = build_features(
        t[t["timestamp"] < as_of],
        as_of,
        products=tables["products"],
        customers=tables["customers"],
        offer_events=tables["offer_events"][tables["offer_events"]["timestamp"] < as_of],
    )
    pd.testing.assert_frame_equal(full, past_only)
    # and scrambling the future changes nothing
    future = t["timestamp"] >= as_of
    scrambled = t.copy()
    scrambled.loc[future, "amount"] = scrambled.loc[future, "amount"] * 100
    pd.testing.assert_frame_equal(
        build_features(
            scrambled,
            as_of,
            products=tables["products"],
            customers=tables["customers"],
            offer_events=tables["offer_events"],
        ),
        full,
    )


def test_columns_and_one_row_per_customer(synth):
    tables, _ = synth
    f = build_features(tables["transactions"], "2024-12-31", products=tables["products"])
    assert list(f.columns) == [*FEATURE_COLUMNS, "favourite_department"]
    assert f.index.is_unique


def test_no_transactions_before_as_of_is_an_error(example):
    transactions, _, _ = example
    with pytest.raises(ValueError, match="no transactions before as_of 2020-01-01"):
        build_features(transactions, "2020-01-01")


def test_department_shares_sum_to_one(example):
    transactions, products, _ = example
    shares = department_shares(transactions, products, AS_OF)
    assert shares.loc["A", "share_DAIRY"] == pytest.approx(35 / 45)
    assert np.allclose(shares.sum(axis=1), 1.0)


def test_a_history_reduced_once_cut_at_any_date_matches_the_lines_cut_there(synth):
    """Reduce-then-cut (PurchaseHistory, what the churn snapshots do) equals cut-then-reduce
    (the lines before each date), features, shares and labels alike, at midnight and mid-day."""
    from recsys.churn import churn_labels
    from recsys.customers.history import PurchaseHistory

    tables, _ = synth
    tx, products = tables["transactions"], tables["products"]
    extra = {"products": products, "customers": tables.get("customers"), "offer_events": tables.get("offer_events")}
    history = PurchaseHistory.of(tx, **extra)
    end = tx["timestamp"].max().normalize()
    for as_of in (end, end - pd.Timedelta(days=75), end - pd.Timedelta(days=150, hours=-13)):
        cut = tx[tx["timestamp"] < as_of]
        events = extra["offer_events"]
        lines = build_features(
            cut,
            as_of,
            products=products,
            customers=extra["customers"],
            offer_events=None if events is None else events[events["timestamp"] < as_of],
        )
        pd.testing.assert_frame_equal(build_features(history, as_of), lines)
        pd.testing.assert_frame_equal(
            department_shares(history, products, as_of), department_shares(cut, products, as_of)
        )
        window = tx[tx["timestamp"] <= as_of + pd.Timedelta(days=30)]
        pd.testing.assert_series_equal(churn_labels(history, as_of, 30), churn_labels(window, as_of, 30))
    assert len(history.baskets) < len(tx) / 2  # what the snapshots cut: baskets, not lines


def test_a_cut_that_keeps_every_row_is_the_table_itself():
    from recsys.data.windows import before

    t = pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-01", "2024-01-05"]), "x": [1, 2]})
    assert before(t, "2024-01-06") is t  # no copy of a table that is before the date already
    assert before(t, "2024-01-05")["x"].tolist() == [1]  # strictly before
    assert before(None, "2024-01-01") is None
