"""Collaborative filtering on customer x product purchases: implicit ALS, item-kNN and baselines.

Every recommender here follows one interface: ``fit(transactions)`` returns self and
``recommend_many(customer_ids, n, exclude_purchased)`` returns lists of product ids, so the
evaluation treats the models and the baselines alike. Models are saved without pickle:
factors and weighting statistics in ``.npz``, id maps in Parquet, parameters in JSON.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from recsys import constants as C
from recsys.errors import RecsysError
from recsys.interactions import IdMap, purchase_counts

logger = logging.getLogger(__name__)

WEIGHTINGS = ("bm25", "tfidf", "none")
_FORMAT = 1


class ModelFileError(RecsysError):
    """A saved model directory is missing a file or was written by another version."""


def _idf(counts: sp.csr_matrix) -> np.ndarray:
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log(max(counts.shape[0], 1)) - np.log1p(df)).astype(np.float32)


def _weight(counts: sp.csr_matrix, weighting: str, idf: np.ndarray, avg_len: float, k1: float,
            b: float) -> sp.csr_matrix:
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


def _top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Column positions of the ``n`` best scores of each row, best first (ties by position)."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


class _Recommender(BaseEstimator):
    """Shared fitting of id maps and counts, and batched recommendation."""

    def _fit_counts(self, transactions: pd.DataFrame) -> sp.csr_matrix:
        if transactions.empty:
            raise ValueError("no transactions to fit on")
        self.customer_map_ = IdMap.of(transactions[C.CUSTOMER_ID])
        self.product_map_ = IdMap.of(transactions[C.PRODUCT_ID])
        counts = purchase_counts(transactions, self.customer_map_, self.product_map_)
        self.popularity_ = np.asarray((counts > 0).sum(axis=0)).ravel().astype(np.float32)
        return counts

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def recommend_many(self, customer_ids, n: int = C.DEFAULT_K, exclude_purchased: bool = False,
                       chunk: int = 512) -> list[list]:
        """Top ``n`` product ids per customer; unknown customers get the most popular products."""
        check_is_fitted(self, "customer_map_")
        rows = self.customer_map_.positions(list(customer_ids))
        products = self.product_map_.ids.to_numpy()
        popular = products[_top_n(self.popularity_[None, :], n)[0]].tolist()
        out: list[list] = [popular] * len(rows)
        known = np.flatnonzero(rows >= 0)
        for start in range(0, len(known), chunk):
            idx = known[start:start + chunk]
            scores = self._scores(rows[idx]).astype(np.float32, copy=True)
            if exclude_purchased:
                bought = self.user_counts_[rows[idx]].tocoo()
                scores[bought.row, bought.col] = -np.inf
            top = _top_n(scores, n)
            for i, r in zip(idx, top):
                out[i] = products[r].tolist()
        return out


class PopularityRecommender(_Recommender):
    """Baseline: the products bought by most customers in the last ``window_days`` of training."""

    def __init__(self, window_days: int | None = 28):
        self.window_days = window_days

    def fit(self, transactions: pd.DataFrame, y=None) -> "PopularityRecommender":
        self.user_counts_ = self._fit_counts(transactions)
        if self.window_days:
            end = transactions[C.TIMESTAMP].max()
            recent = transactions[transactions[C.TIMESTAMP] > end - pd.Timedelta(days=self.window_days)]
            counts = purchase_counts(recent, self.customer_map_, self.product_map_)
            self.popularity_ = np.asarray((counts > 0).sum(axis=0)).ravel().astype(np.float32)
        return self

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(rows), len(self.popularity_)))

    def recommend_many(self, customer_ids, n: int = C.DEFAULT_K, exclude_purchased: bool = False,
                       chunk: int = 512) -> list[list]:
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
            bought = self.user_counts_.indices[self.user_counts_.indptr[r]:self.user_counts_.indptr[r + 1]]
            keep = top[~np.isin(top, bought)][:n]
            out.append(products[keep].tolist())
        return out


class RepeatPurchaseRecommender(_Recommender):
    """Baseline: each customer's own most-bought products (ties: more recent, then popular)."""

    def fit(self, transactions: pd.DataFrame, y=None) -> "RepeatPurchaseRecommender":
        self.user_counts_ = self._fit_counts(transactions)
        return self

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        counts = self.user_counts_[rows].toarray()
        pop = self.popularity_ / (self.popularity_.max() + 1.0)  # < 1: breaks ties only
        return counts + pop[None, :]


class ALSRecommender(_Recommender):
    """Implicit-feedback matrix factorisation (``implicit``'s ALS) on confidence-weighted counts.

    Counts are baskets holding the product; ``weighting`` is ``bm25`` (default), ``tfidf`` or
    ``none``. Fitted: ``user_factors_``, ``item_factors_``, ``customer_map_``, ``product_map_``,
    ``user_counts_``, ``popularity_``, ``idf_``, ``avg_len_``.
    """

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 1.0,
                 iterations: int = 15, weighting: str = "bm25", bm25_k1: float = 100.0, bm25_b: float = 0.8,
                 random_state: int = C.SEED, num_threads: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.random_state = random_state
        self.num_threads = num_threads

    def fit(self, transactions: pd.DataFrame, y=None) -> "ALSRecommender":
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
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                            alpha=self.alpha, iterations=self.iterations,
                                            random_state=self.random_state, num_threads=self.num_threads)
            model.fit(weighted, show_progress=False)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._model = model
        return self

    def _weighted(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        return _weight(counts, self.weighting, self.idf_, self.avg_len_, self.bm25_k1, self.bm25_b)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[rows] @ self.item_factors_.T

    def _implicit_model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        if getattr(self, "_model", None) is None:
            with threadpool_limits(1, "blas"):
                m = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                            alpha=self.alpha, iterations=self.iterations)
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

    def item_vectors(self, product_ids) -> tuple[np.ndarray, np.ndarray]:
        """Factors of the known products among ``product_ids`` and a mask of which were known."""
        pos = self.product_map_.positions(list(product_ids))
        return self.item_factors_[pos[pos >= 0]], pos >= 0

    # ------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> Path:
        check_is_fitted(self, "user_factors_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / "als.npz", user_factors=self.user_factors_, item_factors=self.item_factors_,
                 idf=self.idf_, popularity=self.popularity_, counts_data=self.user_counts_.data,
                 counts_indices=self.user_counts_.indices, counts_indptr=self.user_counts_.indptr)
        pd.DataFrame({C.CUSTOMER_ID: self.customer_map_.ids}).to_parquet(path / "customers.parquet", index=False)
        pd.DataFrame({C.PRODUCT_ID: self.product_map_.ids}).to_parquet(path / "products.parquet", index=False)
        meta = {"format": _FORMAT, "params": self.get_params(), "avg_len": self.avg_len_}
        (path / "als.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ALSRecommender":
        path = Path(path)
        missing = [f for f in ("als.npz", "als.json", "customers.parquet", "products.parquet")
                   if not (path / f).exists()]
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
            model.user_counts_ = sp.csr_matrix((z["counts_data"], z["counts_indices"], z["counts_indptr"]),
                                               shape=shape)
        model.avg_len_ = meta["avg_len"]
        model.customer_map_ = IdMap(pd.Index(pd.read_parquet(path / "customers.parquet")[C.CUSTOMER_ID]))
        model.product_map_ = IdMap(pd.Index(pd.read_parquet(path / "products.parquet")[C.PRODUCT_ID]))
        return model


class ItemKNNRecommender(_Recommender):
    """Item-item nearest neighbours on BM25-weighted counts (``implicit``'s BM25Recommender)."""

    def __init__(self, neighbours: int = 50, bm25_k1: float = 1.2, bm25_b: float = 0.75, num_threads: int = 0):
        self.neighbours = neighbours
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def fit(self, transactions: pd.DataFrame, y=None) -> "ItemKNNRecommender":
        from implicit.nearest_neighbours import BM25Recommender

        self.user_counts_ = self._fit_counts(transactions)
        from implicit.utils import ParameterWarning

        self.model_ = BM25Recommender(K=self.neighbours, K1=self.bm25_k1, B=self.bm25_b,
                                      num_threads=self.num_threads)
        with warnings.catch_warnings():
            # implicit weights the matrix itself and warns about its own intermediate COO matrix
            warnings.filterwarnings("ignore", category=ParameterWarning)
            self.model_.fit(self.user_counts_, show_progress=False)
        return self

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray((self.user_counts_[rows] @ self.model_.similarity).todense())


def next_period_split(transactions: pd.DataFrame, test_days: int = 28) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Train on everything before the last ``test_days`` days, test on those days."""
    cut = transactions[C.TIMESTAMP].max().normalize() - pd.Timedelta(days=test_days - 1)
    t = transactions[C.TIMESTAMP]
    return transactions[t < cut], transactions[t >= cut], cut


def evaluate_next_period(models: dict[str, _Recommender], train: pd.DataFrame, test: pd.DataFrame,
                         k: int = C.DEFAULT_K) -> pd.DataFrame:
    """Metrics@k of fitted ``models`` on next-period purchases of customers known in training.

    Two tasks: ``all`` (every product bought in the test period is relevant; recommendations may
    repeat past purchases) and ``discovery`` (only products new to the customer are relevant and
    past purchases are excluded from the recommendations).
    """
    from recsys.ranking_metrics import ranking_metrics

    known = pd.Index(train[C.CUSTOMER_ID].unique())
    test = test[test[C.CUSTOMER_ID].isin(known) & (test[C.QUANTITY] > 0 if C.QUANTITY in test else True)]
    bought_test = test.groupby(C.CUSTOMER_ID)[C.PRODUCT_ID].agg(set)
    bought_train = train[train[C.CUSTOMER_ID].isin(bought_test.index)].groupby(C.CUSTOMER_ID)[C.PRODUCT_ID].agg(set)
    customers = bought_test.index.tolist()
    new = [bought_test[c] - bought_train.get(c, set()) for c in customers]
    catalog = train[C.PRODUCT_ID].nunique()
    rows = []
    for name, model in models.items():
        rec = model.recommend_many(customers, k, exclude_purchased=False)
        rows.append({"model": name, "task": "all",
                     **ranking_metrics(rec, [bought_test[c] for c in customers], k, catalog)})
        rec_new = model.recommend_many(customers, k, exclude_purchased=True)
        rows.append({"model": name, "task": "discovery", **ranking_metrics(rec_new, new, k, catalog)})
    return pd.DataFrame(rows)


DEFAULT_ALS_GRID = {"factors": (32, 64), "regularization": (0.05, 0.5)}


def select_als(train: pd.DataFrame, grid: dict | None = None, valid_days: int = 28, k: int = C.DEFAULT_K,
               metric: str = "ndcg", **fixed) -> tuple[dict, pd.DataFrame]:
    """Choose ALS hyperparameters on a temporal split of ``train``: fit on all but its last
    ``valid_days`` days, score next-period ``metric``@k on those days. Returns (best, table)."""
    import itertools

    from recsys.ranking_metrics import ranking_metrics

    grid = grid or DEFAULT_ALS_GRID
    fit_part, valid, _ = next_period_split(train, valid_days)
    valid = valid[valid[C.CUSTOMER_ID].isin(fit_part[C.CUSTOMER_ID].unique())]
    relevant = valid.groupby(C.CUSTOMER_ID)[C.PRODUCT_ID].agg(set)
    names = sorted(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        params = {**fixed, **dict(zip(names, values))}
        model = ALSRecommender(**params).fit(fit_part)
        rec = model.recommend_many(relevant.index.tolist(), k)
        score = ranking_metrics(rec, relevant.tolist(), k)[f"{metric}_at_{k}"]
        rows.append({**params, f"{metric}_at_{k}": score})
        logger.info("ALS %s: %s@%d = %.4f", params, metric, k, score)
    best = max(rows, key=lambda r: r[f"{metric}_at_{k}"])  # first of equals: grid order
    return {n: best[n] for n in (*fixed, *names)}, pd.DataFrame(rows)
