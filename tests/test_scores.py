"""Scores kept per prepared catalog (recsys.offers.scores): the rankings they give are the ones
computed per request, and they are computed a block of customers at a time, only when asked."""

import numpy as np
import pandas as pd
import pytest

from recsys import constants as C
from recsys.incrementality import ControlGroups
from recsys.offers import RANKING_COLUMNS, scores
from recsys.offers.reasons import REASON_RETENTION
from recsys.offers.scores import ScoreTable


def _ids(ranker) -> list:
    known = ranker.snapshot_.customer_map.ids
    return [*known, "new-1", "new-2"]


@pytest.fixture
def block(monkeypatch):
    monkeypatch.setattr(scores, "BLOCK", 64)
    return 64


def test_kept_scores_rank_as_computed_scores(offer_ranker, block):
    _, ranker, catalog, as_of = offer_ranker
    ids = _ids(ranker)
    assert len(ids) > 2 * block  # several blocks, the last one short
    control = ControlGroups(share=0.2)
    plain = ranker.rank_many(ids, ranker.prepare(catalog), k=5, as_of=as_of, control=control)
    kept = ranker.prepare(catalog, keep_scores=True)
    ranked = ranker.rank_many(ids, kept, k=5, as_of=as_of, control=control)
    pd.testing.assert_frame_equal(ranked, plain)
    assert (ranked["reason"] == REASON_RETENTION).any() and ranked["cold_start"].any()
    # one customer per request, as the service asks: the same answers as the batch
    for c in [*ids[:: max(1, len(ids) // 25)], "new-1"]:
        one = ranker.rank_many([c], kept, k=5, as_of=as_of, control=control)
        want = plain[plain[C.CUSTOMER_ID] == c].reset_index(drop=True)
        pd.testing.assert_frame_equal(one[RANKING_COLUMNS], want, check_dtype=False)


def test_blocks_are_computed_when_first_asked_for(offer_ranker, block):
    _, ranker, catalog, as_of = offer_ranker
    kept = ranker.prepare(catalog, keep_scores=True)
    table = kept.scores
    assert table.blocks_done == 0
    known = ranker.snapshot_.customer_map.ids
    ranker.rank(known[block + 3], kept, k=3, as_of=as_of)
    assert table.blocks_done == 1 and table.blocks.done[1]
    ranker.rank(known[block + 4], kept, k=3, as_of=as_of)
    ranker.rank("nobody-known", kept, k=3, as_of=as_of)
    assert table.blocks_done == 1  # a repeat of the block and a cold start compute no block
    ranker.rank_many(list(known[:3]) + list(known[-2:]), kept, k=3, as_of=as_of)
    assert table.blocks_done == 3


def test_customers_with_later_history_are_scored_from_it(offer_ranker):
    ds, ranker, catalog, as_of = offer_ranker
    known = ranker.snapshot_.customer_map.ids[5]
    hist = ds.transactions[ds.transactions[C.CUSTOMER_ID] == known].assign(**{C.CUSTOMER_ID: "late-joiner"})
    kept = ranker.prepare(catalog, keep_scores=True)
    warm = ranker.rank_many(["late-joiner"], kept, k=5, as_of=as_of, history=hist)
    want = ranker.rank_many(["late-joiner"], ranker.prepare(catalog), k=5, as_of=as_of, history=hist)
    pd.testing.assert_frame_equal(warm, want)
    assert not warm["cold_start"].any() and kept.scores.blocks_done == 0


def test_later_history_changes_the_customers_features_not_the_offers_popularity_or_redemption_rate(offer_ranker):
    """Regression: a customer's later purchases were made into a snapshot of that customer alone
    and the catalog prepared again from it, so the offers' product popularity was the share of
    that one customer buying each product and their redemption rate that of no event at all."""
    ds, ranker, catalog, _ = offer_ranker
    known = ranker.snapshot_.customer_map.ids[5]
    hist = ds.transactions[ds.transactions[C.CUSTOMER_ID] == known].assign(**{C.CUSTOMER_ID: "late-joiner"})
    prepared = ranker.prepare(catalog)
    feats, _, cold = ranker.score(pd.Index(["late-joiner"]), prepared, history=hist)
    own, _, _ = ranker.score(pd.Index([known]), prepared)
    assert not cold.any() and feats["hist_count"].sum() > 0
    for name in ("product_popularity", "offer_redemption_rate", "offer_products"):
        np.testing.assert_array_equal(feats[name][0], getattr(prepared.catalog, name), err_msg=name)
        np.testing.assert_array_equal(feats[name][0], own[name][0], err_msg=name)
    popularity = prepared.catalog.product_popularity
    assert ((popularity > 0) & (popularity < 1)).any()  # shares of every customer, not of one


def test_table_rows_and_the_shared_cold_row():
    calls = []

    def compute(rows):
        calls.append(rows.tolist())
        values = np.where(rows[:, None] >= 0, rows[:, None] * 10.0, -1.0) + np.arange(3)[None, :]
        return values, (values > 20).astype(np.int8)

    table = ScoreTable(5, 3, compute, block=2)
    p, reasons = table.take(np.array([3, -1, 0, 3]))
    np.testing.assert_array_equal(p[:, 0], [30.0, -1.0, 0.0, 30.0])
    np.testing.assert_array_equal(reasons[0], [1, 1, 1])
    assert calls == [[0, 1], [2, 3], [-1]]
    p[:] = 99  # a copy: the table keeps its rows
    assert table.take(np.array([4]))[0][0, 0] == 40.0 and table.take(np.array([3]))[0][0, 0] == 30.0
    assert calls[-1] == [4] and table.blocks_done == 3
