"""Implicit-feedback ALS (the ``implicit`` library) on confidence-weighted basket counts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from recsys import constants as C
from recsys.cf.base import ModelFileError, Recommender
from recsys.cf.interactions import IdMap, purchase_counts
from recsys.data.lines import BasketLines

logger = logging.getLogger(__name__)


WEIGHTINGS = ("bm25", "tfidf", "none")


_FORMAT = 1


def _idf(counts: sp.csr_matrix) -> np.ndarray:
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log(max(counts.shape[0], 1)) - np.log1p(df)).astype(np.float32)


def _weight(
    counts: sp.csr_matrix, weighting: str, idf: np.ndarray, avg_len: float, k1: float, b: float
) -> sp.csr_matrix:
    """Confidence weights: the formulas of implicit's ``bm25_weight`` / ``tfidf_weight``, with the
    item statistics passed in so a single new customer is weighted exactly like training rows."""
    w = counts.tocoo(copy=True)
    if weighting == "bm25":
        row_len = np.ravel(counts.sum(axis=1))
        norm = (1.0 - b) + b * row_len / avg_len
        w.data = w.data * (k1 + 1.0) / (k1 * norm[w.row] + w.data) * idf[w.col]
    elif weighting == "tfidf":
        w.data = np.sqrt(w.data) * idf[w.col]
    return w.tocsr().astype(np.float32)


class ALSRecommender(Recommender):
    """Implicit-feedback matrix factorisation (``implicit``'s ALS) on confidence-weighted counts.

    Counts are baskets holding the product; ``weighting`` is ``bm25`` (default), ``tfidf`` or
    ``none``.

    Parameters: ``factors``, ``regularization``, ``alpha``, ``iterations`` (implicit's ALS),
    ``weighting`` with ``bm25_k1`` / ``bm25_b``, ``random_state``, ``num_threads`` (0: all cores).

    Fitted: ``user_factors_``, ``item_factors_`` (float32), ``customer_map_``, ``product_map_``,
    ``user_counts_``, ``popularity_``, ``idf_``, ``avg_len_``. Saved without pickle: factors and
    weighting statistics in ``.npz``, id maps in Parquet, parameters in JSON.
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        weighting: str = "bm25",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        random_state: int = C.SEED,
        num_threads: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.random_state = random_state
        self.num_threads = num_threads

    def fit(self, transactions: pd.DataFrame | BasketLines, y=None) -> ALSRecommender:
        from implicit.cpu.als import AlternatingLeastSquares

        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {self.weighting!r}")
        counts = self._fit_counts(transactions)
        self.user_counts_ = counts
        self.idf_ = _idf(counts)
        self.avg_len_ = float(np.ravel(counts.sum(axis=1)).mean())
        weighted = self._weighted(counts)
        # implicit parallelises itself; a multithreaded BLAS underneath only oversubscribes the cores.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            model.fit(weighted, show_progress=False)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._model = model
        return self

    def _weighted(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        return _weight(counts, self.weighting, self.idf_, self.avg_len_, self.bm25_k1, self.bm25_b)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[rows] @ self.item_factors_.T

    def _top_rows(self, rows: np.ndarray, n: int, exclude_purchased: bool) -> np.ndarray:
        """The ``n`` best products of each customer row by implicit's top-k over the factors (its
        threads, no customers x products scores kept: about four times faster than scoring and
        partitioning every product, most of the next-period evaluation at ten times The Complete
        Journey). Exact ties may come in another order than the base class's; with fewer
        unpurchased products than ``n`` the base class ranks (it returns purchased ones last)."""
        from implicit.cpu.topk import topk

        n = min(n, len(self.item_factors_))
        bought = self.user_counts_[rows] if exclude_purchased else None
        with threadpool_limits(1, "blas"):
            ids, _ = topk(
                self.item_factors_, self.user_factors_[rows], n, filter_query_items=bought, num_threads=self.num_threads
            )
        if (ids < 0).any():
            return super()._top_rows(rows, n, exclude_purchased)
        return ids

    def _implicit_model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        if getattr(self, "_model", None) is None:
            with threadpool_limits(1, "blas"):
                m = AlternatingLeastSquares(
                    factors=self.factors,
                    regularization=self.regularization,
                    alpha=self.alpha,
                    iterations=self.iterations,
                )
            m.user_factors, m.item_factors = self.user_factors_, self.item_factors_
            self._model = m
        return self._model

    def user_vector(self, customer_id=None, history: pd.DataFrame | None = None) -> np.ndarray | None:
        """The customer's factors: from training, or recomputed from ``history`` (transactions of
        this customer, e.g. purchases after training) by one ALS least-squares step against the
        fixed item factors. None for an unknown customer without usable history."""
        check_is_fitted(self, "user_factors_")
        if history is not None and len(history):
            one = IdMap(pd.Index([0]))
            counts = purchase_counts(history.assign(**{C.CUSTOMER_ID: 0}), one, self.product_map_)
            if counts.nnz:
                with threadpool_limits(1, "blas"):
                    vec = self._implicit_model().recalculate_user(0, self._weighted(counts))
                return np.asarray(vec, dtype=np.float32).ravel()
        row = self.customer_map_.position(customer_id) if customer_id is not None else None
        return None if row is None else self.user_factors_[row]

    def user_vectors_from_counts(self, counts: sp.csr_matrix) -> np.ndarray:
        """Factors for many customers at once from their basket counts (customers x this model's
        products), each one ALS least-squares step against the fixed item factors."""
        check_is_fitted(self, "user_factors_")
        if counts.shape[0] == 0:
            return np.zeros((0, self.factors), np.float32)
        with threadpool_limits(1, "blas"):
            vecs = self._implicit_model().recalculate_user(np.arange(counts.shape[0]), self._weighted(counts))
        return np.asarray(vecs, dtype=np.float32).reshape(counts.shape[0], -1)

    # ------------------------------------------------------------- persistence

    def save(self, path: str | Path, *, counts: bool = True) -> Path:
        """Write the model under ``path``. Without ``counts`` the purchase counts are left out:
        whoever saves the model that way keeps them and gives them back to :meth:`load` (the
        model bundle, whose offer snapshot holds the same matrix)."""
        check_is_fitted(self, "user_factors_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        kept = (
            {
                "counts_data": self.user_counts_.data,
                "counts_indices": self.user_counts_.indices,
                "counts_indptr": self.user_counts_.indptr,
            }
            if counts
            else {}
        )
        np.savez_compressed(  # the purchase counts are whole numbers: they compress well
            path / "als.npz",
            user_factors=self.user_factors_,
            item_factors=self.item_factors_,
            idf=self.idf_,
            popularity=self.popularity_,
            **kept,
        )
        pd.DataFrame({C.CUSTOMER_ID: self.customer_map_.ids}).to_parquet(path / "customers.parquet", index=False)
        pd.DataFrame({C.PRODUCT_ID: self.product_map_.ids}).to_parquet(path / "products.parquet", index=False)
        meta = {"format": _FORMAT, "params": self.get_params(), "avg_len": self.avg_len_}
        (path / "als.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, counts: sp.csr_matrix | None = None) -> ALSRecommender:
        """The model saved at ``path``; ``counts``: its purchase counts, when saved without them."""
        path = Path(path)
        missing = [
            f for f in ("als.npz", "als.json", "customers.parquet", "products.parquet") if not (path / f).exists()
        ]
        if missing:
            raise ModelFileError(f"{path}: not a saved ALS model (missing {', '.join(missing)})")
        meta = json.loads((path / "als.json").read_text())
        if meta.get("format") != _FORMAT:
            raise ModelFileError(f"{path}: model format {meta.get('format')} is not {_FORMAT}")
        model = cls(**meta["params"])
        with np.load(path / "als.npz", allow_pickle=False) as z:
            model.user_factors_ = z["user_factors"]
            model.item_factors_ = z["item_factors"]
            model.idf_ = z["idf"]
            model.popularity_ = z["popularity"]
            shape = (len(model.user_factors_), len(model.item_factors_))
            if "counts_data" in z.files:
                model.user_counts_ = sp.csr_matrix(
                    (z["counts_data"], z["counts_indices"], z["counts_indptr"]), shape=shape
                )
            elif counts is None or counts.shape != shape:
                found = "none were given" if counts is None else f"they are {counts.shape[0]} x {counts.shape[1]}"
                raise ModelFileError(f"{path}: saved without its purchase counts ({shape[0]} x {shape[1]}); {found}")
            else:
                model.user_counts_ = counts
        model.avg_len_ = meta["avg_len"]
        model.customer_map_ = IdMap(pd.Index(pd.read_parquet(path / "customers.parquet")[C.CUSTOMER_ID]))
        model.product_map_ = IdMap(pd.Index(pd.read_parquet(path / "products.parquet")[C.PRODUCT_ID]))
        return model
