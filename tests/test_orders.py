"""Orders kept per prepared catalog, day and channel (recsys.offers.orders): the rankings they
give are the ones computed per request, with the customers' events, the channels and the
control groups; they are computed a block of customers at a time, only when asked for."""

import numpy as np
import pandas as pd
import pytest

from recsys import constants as C
from recsys.incrementality import ControlGroups
from recsys.offers import orders, scores


@pytest.fixture
def block(monkeypatch):
    monkeypatch.setattr(scores, "BLOCK", 64)
    return 64


def _events(plain: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per customer, by turns: three sends of its first offer (the frequency cap), a redemption
    of it (single use), five views of its second (the view cap), or a hold-back (no limit)."""
    rows = []
    firsts = plain[plain["rank"] == 1].set_index(C.CUSTOMER_ID)[C.OFFER_ID]
    seconds = plain[plain["rank"] == 2].set_index(C.CUSTOMER_ID)[C.OFFER_ID]
    for i, (customer, offer) in enumerate(firsts.items()):
        at = as_of - pd.Timedelta(days=2)
        kind = i % 4
        if kind == 0:
            rows += [(customer, offer, C.SENT, at - pd.Timedelta(hours=h)) for h in range(3)]
        elif kind == 1:
            rows.append((customer, offer, C.REDEEMED, at))
        elif kind == 2 and customer in seconds:
            rows += [(customer, seconds[customer], C.VIEWED, at - pd.Timedelta(hours=h)) for h in range(5)]
        else:
            rows.append((customer, offer, C.HELD_OUT, at))
    return pd.DataFrame(rows, columns=[C.CUSTOMER_ID, C.OFFER_ID, C.EVENT, C.TIMESTAMP])


@pytest.mark.parametrize("channel", [None, "email", "web"])
def test_kept_orders_rank_as_computed_orders(offer_ranker, block, channel):
    _, ranker, catalog, as_of = offer_ranker
    known = list(ranker.snapshot_.customer_map.ids)
    assert len(known) > 2 * block  # several blocks, the last one short
    control = ControlGroups(share=0.2)
    asked = {"k": 5, "as_of": as_of, "channel": channel, "control": control, "decided_at": as_of}
    computed = ranker.prepare(catalog)  # no kept scores: every order computed per request
    first = ranker.rank_many(known, computed, **asked)
    events = _events(first, as_of)
    plain = ranker.rank_many(known, computed, events=events, **asked)
    assert not plain.equals(first)  # the events take offers out
    kept = ranker.prepare(catalog, keep_scores=True)
    ranked = ranker.rank_many(known, kept, events=events, **asked)
    pd.testing.assert_frame_equal(ranked, plain)
    assert (as_of, channel) in kept.orders  # the kept path answered
    # one customer per request, as the service asks
    for c in known[:: max(1, len(known) // 40)]:
        mine = events[events[C.CUSTOMER_ID] == c]
        one = ranker.rank_many([c], kept, events=mine, **asked)
        want = plain[plain[C.CUSTOMER_ID] == c].reset_index(drop=True)
        pd.testing.assert_frame_equal(one, want, check_dtype=False)


def test_retention_offers_lead_for_customers_at_risk_in_kept_orders(offer_ranker):
    _, ranker, catalog, as_of = offer_ranker
    kept = ranker.prepare(catalog, keep_scores=True)
    known = ranker.snapshot_.customer_map.ids
    # at risk, and in the retention offer's risk range (from 0.6)
    bound = max(ranker.eligibility_rules().at_risk_threshold, 0.6)
    risky = [c for c in known if ranker.churn_.get(c, 0) >= bound]
    assert risky
    ranked = ranker.rank_many(risky, kept, k=3, as_of=as_of)
    firsts = ranked[ranked["rank"] == 1]
    assert (firsts[C.OFFER_ID] == "come-back").all() and (firsts["tier"] == 0).all()


def test_orders_are_kept_per_day_and_channel_a_block_at_a_time(offer_ranker, block, monkeypatch):
    _, ranker, catalog, as_of = offer_ranker
    kept = ranker.prepare(catalog, keep_scores=True)
    known = ranker.snapshot_.customer_map.ids
    ranker.rank(known[block + 1], kept, k=3, as_of=as_of)
    table = kept.orders[(as_of, None)]
    assert table.blocks.done.tolist()[:3] == [False, True, False]
    ranker.rank(known[block + 2], kept, k=3, as_of=as_of, channel="email")
    assert set(kept.orders) == {(as_of, None), (as_of, "email")}
    # an exclusion or a customer unknown to the ranker is ordered per request
    ranker.rank(known[0], kept, k=3, as_of=as_of, exclude=["OF0001"])
    ranker.rank_many([known[0], "nobody-known"], kept, k=3, as_of=as_of)
    assert table.blocks.done.sum() == 1
    monkeypatch.setattr(orders, "KEPT_ORDERS", 2)
    ranker.rank(known[0], kept, k=3, as_of=as_of + pd.Timedelta(days=1))
    assert list(kept.orders) == [(as_of, "email"), (as_of + pd.Timedelta(days=1), None)]  # the oldest went


def test_an_order_table_computes_each_block_once():
    calls = []

    def compute(rows):
        calls.append(rows.tolist())
        order = np.tile(np.arange(4)[::-1], (len(rows), 1))
        return order, (rows % 4).tolist(), rows % 2 == 1

    table = orders.OrderTable(5, 4, compute, block=2)
    found, at_risk = table.take(np.array([3, 0, 3]))
    assert found == [[3, 2, 1], [], [3, 2, 1]] and at_risk.tolist() == [True, False, True]
    assert calls == [[0, 1], [2, 3]]
    found[0].append(99)  # a copy: the table keeps its rows
    assert table.take(np.array([3, 4]))[0] == [[3, 2, 1], []] and calls[-1] == [4]
