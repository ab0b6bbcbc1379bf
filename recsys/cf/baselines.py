"""Baselines every CF model is compared with: popularity and each customer's own repeat purchases."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from recsys import constants as C
from recsys.cf.base import Recommender, _top_n
from recsys.data.lines import BasketLines

logger = logging.getLogger(__name__)


class PopularityRecommender(Recommender):
    """Baseline: the products bought by most customers in the last ``window_days`` of training
    (all of it when None). Fitted: the base class's maps and counts; ``popularity_`` counts the
    window's buyers."""

    def __init__(self, window_days: int | None = 28):
        self.window_days = window_days

    def fit(self, transactions: pd.DataFrame | BasketLines, y=None) -> PopularityRecommender:
        if not isinstance(transactions, BasketLines):
            with BasketLines.of(transactions) as lines:
                return self.fit(lines)
        self.user_counts_ = self._fit_counts(transactions)
        if self.window_days:
            since = pd.Timestamp(transactions.last()) - pd.Timedelta(days=self.window_days)
            buyers = transactions.buyers(since)
            cols = self.product_map_.positions(buyers["p"])
            self.popularity_ = np.zeros(len(self.product_map_), np.float32)
            self.popularity_[cols[cols >= 0]] = buyers["buyers"][cols >= 0]
        return self

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(rows), len(self.popularity_)))

    def recommend_many(
        self, customer_ids, n: int = C.DEFAULT_K, exclude_purchased: bool = False, chunk: int = 512
    ) -> list[list]:
        """The same ranking for everyone: computed once, then each customer's purchases removed."""
        check_is_fitted(self, "customer_map_")
        rows = self.customer_map_.positions(list(customer_ids))
        products = self.product_map_.ids.to_numpy()
        longest = int(np.diff(self.user_counts_.indptr).max()) if exclude_purchased and self.user_counts_.nnz else 0
        top = _top_n(self.popularity_[None, :], n + longest)[0]
        if not exclude_purchased:
            first = products[top[:n]].tolist()
            return [first] * len(rows)
        out = []
        for r in rows:
            if r < 0:
                out.append(products[top[:n]].tolist())
                continue
            bought = self.user_counts_.indices[self.user_counts_.indptr[r] : self.user_counts_.indptr[r + 1]]
            keep = top[~np.isin(top, bought)][:n]
            out.append(products[keep].tolist())
        return out


class RepeatPurchaseRecommender(Recommender):
    """Baseline: each customer's own most-bought products (ties: more recent, then popular)."""

    def fit(self, transactions: pd.DataFrame | BasketLines, y=None) -> RepeatPurchaseRecommender:
        self.user_counts_ = self._fit_counts(transactions)
        return self

    def _tiebreak(self) -> np.ndarray:
        return self.popularity_ / (self.popularity_.max() + 1.0)  # < 1: breaks ties only

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        counts = self.user_counts_[rows].toarray()
        return counts + self._tiebreak()[None, :]

    def recommend_many(
        self, customer_ids, n: int = C.DEFAULT_K, exclude_purchased: bool = False, chunk: int = 512
    ) -> list[list]:
        """The order of :meth:`_scores` from each customer's own row of counts: the products it
        bought (a count of 1 or more) by count plus the tie-breaker, then the others by the
        tie-breaker alone (below 1), ties by position; with ``exclude_purchased`` the others
        only. No customers x products matrix is made (at ten times The Complete Journey that
        was a fifth of the next-period evaluation's time)."""
        check_is_fitted(self, "customer_map_")
        rows = self.customer_map_.positions(list(customer_ids))
        products = self.product_map_.ids.to_numpy()
        counts = self.user_counts_
        tiebreak = self._tiebreak().astype(np.float32)
        longest = int(np.diff(counts.indptr).max()) if counts.nnz else 0
        others = _top_n(tiebreak[None, :], n + longest)[0]  # by the tie-breaker, ties by position
        popular = products[_top_n(self.popularity_[None, :], n)[0]].tolist()
        out = []
        for r in rows:
            if r < 0:
                out.append(popular)
                continue
            cols = counts.indices[counts.indptr[r] : counts.indptr[r + 1]]
            rest = others[~np.isin(others, cols)]
            if exclude_purchased:
                out.append(products[rest[:n]].tolist())
                continue
            score = (counts.data[counts.indptr[r] : counts.indptr[r + 1]] + tiebreak[cols]).astype(np.float32)
            own = cols[np.lexsort((cols, -score))][:n]
            out.append(products[np.concatenate([own, rest[: n - len(own)]])].tolist())
        return out
