"""Item-kNN: a classic neighbourhood model, a second CF method beside ALS."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from recsys.cf.base import Recommender
from recsys.data.lines import BasketLines

logger = logging.getLogger(__name__)


class ItemKNNRecommender(Recommender):
    """Item-item nearest neighbours on BM25-weighted counts (``implicit``'s BM25Recommender).

    Parameters: ``neighbours`` (K), ``bm25_k1``, ``bm25_b``, ``num_threads``. Fitted: ``model_``
    (the implicit model) and the base class's maps and counts.
    """

    def __init__(self, neighbours: int = 50, bm25_k1: float = 1.2, bm25_b: float = 0.75, num_threads: int = 0):
        self.neighbours = neighbours
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def fit(self, transactions: pd.DataFrame | BasketLines, y=None) -> ItemKNNRecommender:
        from implicit.nearest_neighbours import BM25Recommender

        self.user_counts_ = self._fit_counts(transactions)
        from implicit.utils import ParameterWarning

        self.model_ = BM25Recommender(K=self.neighbours, K1=self.bm25_k1, B=self.bm25_b, num_threads=self.num_threads)
        with warnings.catch_warnings():
            # implicit weights the matrix itself and warns about its own intermediate COO matrix
            warnings.filterwarnings("ignore", category=ParameterWarning)
            self.model_.fit(self.user_counts_, show_progress=False)
        return self

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray((self.user_counts_[rows] @ self.model_.similarity).todense())
