"""Each known customer's P(redeem) and reason codes for one prepared catalog, computed ahead.

A ranking's scores depend on the customer and the catalog, never on the request: the features
come from the ranker's snapshot, the model is fixed. A service that answers one customer per
request (an email send asks for each customer once) would compute them one row at a time, in
many small array operations per request. :class:`ScoreTable` computes them for a block of
customers at once, the first time any customer of the block is asked for, with the same batch
arithmetic as a ranking of many customers, and keeps them for the catalog's life: a request
then takes its customer's row and is left with the eligibility, the order and the draws.

Customers without history (cold start) all share one row. Memory: 9 bytes per (customer,
offer) of the blocks asked for, allocated as they are (a catalog of 200 offers and 250,000
customers: 450 MB once every block is asked for).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd

from recsys.offers.features import affinity_features
from recsys.offers.reasons import reason_codes

BLOCK = 256  # customers scored together: a block costs about as much as a handful of single rows


class Blocks:
    """Which blocks of ``n`` rows are computed. :meth:`ensure` computes the missing blocks of the
    rows asked for, one thread at a time: the others wait, then read them."""

    def __init__(self, n: int, block: int | None = None):
        self.n, self.block = n, block or BLOCK
        self.done = np.zeros(-(-n // self.block), bool)
        self.lock = threading.Lock()

    def ensure(self, rows: np.ndarray, fill: Callable[[int, int], None]) -> None:
        """``fill(lo, hi)`` for each block of ``rows`` (positions >= 0) not computed yet."""
        if len(rows) == 1 and self.done[rows[0] // self.block]:  # one customer's request
            return
        blocks = np.unique(rows // self.block)
        missing = blocks[~self.done[blocks]]
        if not len(missing):
            return
        with self.lock:
            for b in missing.tolist():
                if not self.done[b]:
                    fill(b * self.block, min((b + 1) * self.block, self.n))
                    self.done[b] = True  # set after the rows are written: a reader never sees half a block


class ScoreTable:
    """``compute(rows)`` gives ``(p, reasons)`` (rows x offers, float64 and int8) for positions
    in the ranker's customer map, -1 meaning a customer without history; :meth:`take` returns
    the rows asked for, computing the blocks they fall in on first use."""

    def __init__(self, n_customers: int, n_offers: int, compute: Callable, block: int | None = None):
        self.n_customers, self.n_offers = n_customers, n_offers
        self._compute = compute
        self._p = np.empty((n_customers, n_offers), np.float64)  # untouched pages cost no memory
        self._reasons = np.empty((n_customers, n_offers), np.int8)
        self.blocks = Blocks(n_customers, block)
        self._cold: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def blocks_done(self) -> int:
        return int(self.blocks.done.sum())

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(redeem) and reason codes of each row (len(rows) x offers, copies)."""
        rows = np.asarray(rows, dtype=np.int64)
        known = rows >= 0
        self.blocks.ensure(rows[known], self._fill)
        if self._cold is None and not known.all():
            with self.blocks.lock:
                if self._cold is None:
                    p, reasons = self._compute(np.array([-1]))
                    self._cold = (p[0].copy(), reasons[0].copy())
        safe = np.where(known, rows, 0)
        p, reasons = self._p[safe], self._reasons[safe]
        if not known.all():
            p[~known], reasons[~known] = self._cold
        return p, reasons

    def _fill(self, lo: int, hi: int) -> None:
        self._p[lo:hi], self._reasons[lo:hi] = self._compute(np.arange(lo, hi))


def rows_scores(ranker, rows: np.ndarray, catalog, retention: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(redeem) and reason codes (the retention reason aside) of the fitted ``ranker``'s
    snapshot customers at ``rows`` (-1: without history), as ``ranker.score`` computes them for
    their ids: what a :class:`ScoreTable` keeps."""
    feats = affinity_features(ranker.snapshot_, catalog, rows, cf_model=ranker.cf_model_)
    p = ranker.redemption_model_.predict_pairs(feats)
    return p, reason_codes(feats, np.zeros(len(rows), bool), retention)


def customer_scores(ranker, ids: pd.Index, prepared, history) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(redeem), reason codes (the retention reason aside) and the cold-start flag of each
    customer x offer of ``prepared`` (recsys.offers.prepared.PreparedOffers): from its kept
    scores when it has them and no later purchase history is given, else computed."""
    if prepared.scores is not None and (history is None or not len(history)):
        rows = ranker.snapshot_.customer_map.positions(ids)
        p, reasons = prepared.scores.take(rows)
        return p, reasons, rows < 0
    feats, p, cold = ranker.score(ids, prepared, history=history)
    return p, reason_codes(feats, np.zeros(len(ids), bool), prepared.retention), cold
