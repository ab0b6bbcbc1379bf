"""Next-period evaluation of recommenders and the temporal choice of ALS hyperparameters."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.cf.als import ALSRecommender
from recsys.cf.base import Recommender
from recsys.data.lines import BasketLines
from recsys.evaluation.ranking import ranking_metrics

logger = logging.getLogger(__name__)


def next_period_cut(transactions: pd.DataFrame | BasketLines, test_days: int = 28) -> pd.Timestamp:
    """The start of the test period: the midnight ``test_days - 1`` days before the last day
    (of the transactions, or of the purchases their basket lines hold)."""
    if isinstance(transactions, BasketLines):
        last = pd.Timestamp(transactions.last())
    else:
        last = transactions[C.TIMESTAMP].max()
    return last.normalize() - pd.Timedelta(days=test_days - 1)


def next_period_split(
    transactions: pd.DataFrame, test_days: int = 28
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Train on everything before the last ``test_days`` days, test on those days."""
    cut = next_period_cut(transactions, test_days)
    t = transactions[C.TIMESTAMP]
    return transactions[t < cut], transactions[t >= cut], cut


def evaluate_next_period(
    models: dict[str, Recommender],
    train: pd.DataFrame | BasketLines,
    test: pd.DataFrame | BasketLines,
    k: int = C.DEFAULT_K,
) -> pd.DataFrame:
    """Metrics@k of fitted ``models`` on next-period purchases of customers known in training.

    Two tasks: ``all`` (every product bought in the test period is relevant; recommendations may
    repeat past purchases) and ``discovery`` (only products new to the customer are relevant and
    past purchases are excluded from the recommendations).
    """
    lines = isinstance(train, BasketLines) and isinstance(test, BasketLines)
    if lines:  # distinct ids and the new pairs from DuckDB: no copy of every training pair
        train_customers, train_products = train.ids()
        fresh = test.new_pairs(train)
        bought = test.counts()
        test = pd.DataFrame({C.CUSTOMER_ID: bought["c"], C.PRODUCT_ID: bought["p"]}, copy=False)
    else:
        train_customers, train_products = train[C.CUSTOMER_ID].to_numpy(), train[C.PRODUCT_ID].to_numpy()
    known = pd.Index(pd.unique(train_customers))
    test = test[test[C.CUSTOMER_ID].isin(known) & (test[C.QUANTITY] > 0 if C.QUANTITY in test else True)]
    bought_test = test.groupby(C.CUSTOMER_ID)[C.PRODUCT_ID].agg(set)
    customers = bought_test.index.tolist()
    if lines:
        by = pd.Series(fresh["p"], index=fresh["c"]).groupby(level=0).agg(set)
        new = [by.get(c, set()) for c in customers]
    else:
        new = _new_products(bought_test, train_customers, train_products)
    catalog = len(pd.unique(train_products))
    rows = []
    for name, model in models.items():
        rec = model.recommend_many(customers, k, exclude_purchased=False)
        rows.append(
            {"model": name, "task": "all", **ranking_metrics(rec, [bought_test[c] for c in customers], k, catalog)}
        )
        rec_new = model.recommend_many(customers, k, exclude_purchased=True)
        rows.append({"model": name, "task": "discovery", **ranking_metrics(rec_new, new, k, catalog)})
    return pd.DataFrame(rows)


def _new_products(bought_test: pd.Series, train_customers: np.ndarray, train_products: np.ndarray) -> list[set]:
    """Per customer of ``bought_test``, the products bought in the test period and never in
    training (its customer and product of each line or pair): the pairs are looked up as integers, not held as
    one Python set per customer (a set of every past purchase, at ten times The Complete Journey,
    is half a gigabyte)."""
    customers = pd.Index(bought_test.index)
    tested = bought_test.explode()
    products = pd.Index(pd.unique(tested.to_numpy()))
    rows = customers.get_indexer(train_customers)
    cols = products.get_indexer(train_products)
    ok = (rows >= 0) & (cols >= 0)
    seen = np.unique(rows[ok].astype(np.int64) * len(products) + cols[ok])
    key = customers.get_indexer(tested.index).astype(np.int64) * len(products) + products.get_indexer(tested.to_numpy())
    fresh = ~np.isin(key, seen)
    kept = tested[fresh]
    new = kept.groupby(level=0).agg(set)
    return [new.get(c, set()) for c in customers]


DEFAULT_ALS_GRID = {"factors": (32, 64), "regularization": (0.05, 0.5)}


def select_als(
    train: pd.DataFrame,
    grid: dict | None = None,
    valid_days: int = 28,
    k: int = C.DEFAULT_K,
    metric: str = "ndcg",
    **fixed,
) -> tuple[dict, pd.DataFrame]:
    """Choose ALS hyperparameters on a temporal split of ``train``: fit on all but its last
    ``valid_days`` days, score next-period ``metric``@k on those days. Returns (best, table)."""
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
