"""What is known about customers at a date: sparse customer x product purchase state.

``basket_lines`` reduces transactions to one row per (customer, product, basket) once, in DuckDB;
``snapshot`` cuts them at ``as_of`` into the matrices every offer feature is computed from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import constants as C
from recsys.cf import IdMap
from recsys.cf.interactions import positioned_matrices
from recsys.data.lines import BasketLines
from recsys.data.windows import before

logger = logging.getLogger(__name__)


HALF_LIFE_DAYS = 28.0


RECENT_DAYS = 56


@dataclass
class Snapshot:
    """What is known about customers at ``as_of``: the basis of every affinity feature."""

    as_of: pd.Timestamp
    customer_map: IdMap
    product_map: IdMap
    counts: sp.csr_matrix  # baskets holding the product
    spend: sp.csr_matrix  # amount spent on the product
    decayed: sp.csr_matrix  # the same, each basket weighted 0.5 ** (age / HALF_LIFE_DAYS)
    recent: sp.csr_matrix  # baskets in the last RECENT_DAYS
    category_of: np.ndarray  # category position of each product, -1 when unknown
    categories: pd.Index
    customer_baskets: np.ndarray
    customer_redemptions: np.ndarray
    product_popularity: np.ndarray  # share of customers buying the product in the last RECENT_DAYS
    offer_history: pd.DataFrame  # per offer_id: sent, redeemed before as_of
    customer_lines: np.ndarray  # sum of each customer's row of ``counts``
    _category_counts: sp.csr_matrix | None = None

    @property
    def category_counts(self) -> sp.csr_matrix:
        """Baskets per (customer, category), computed once."""
        if self._category_counts is None:
            self._category_counts = _category_matrix(self, self.counts)
        return self._category_counts


def basket_lines(transactions: pd.DataFrame) -> BasketLines:
    """The basket lines of ``transactions`` (one per customer, product and basket bought, in
    DuckDB: recsys.data.lines). Built once, they serve snapshots at many dates; close them after."""
    return BasketLines.of(transactions)


def snapshot(
    transactions: pd.DataFrame | None,
    as_of,
    *,
    products: pd.DataFrame | None = None,
    offer_events: pd.DataFrame | None = None,
    customer_map: IdMap | None = None,
    product_map: IdMap | None = None,
    lines: BasketLines | None = None,
    customers: pd.Index | None = None,
) -> Snapshot:
    """Sparse customer x product state from transactions strictly before ``as_of``.

    ``lines`` is :func:`basket_lines` of ``transactions``, when the caller has it already
    (``transactions`` may then be None: everything is read from the lines). ``customers``: the
    rows of only these customers (those with a basket before ``as_of``), each row the same as in
    the snapshot of everyone, and product popularity still over every customer: a past
    campaign's recipients are a few of them.
    """
    as_of = pd.Timestamp(as_of)
    if customers is not None and customer_map is not None:
        raise ValueError("snapshot takes customers or a customer_map, not both")
    if lines is None:
        with basket_lines(before(transactions, as_of)) as own:
            maps = {"customer_map": customer_map, "product_map": product_map, "customers": customers}
            return snapshot(transactions, as_of, products=products, offer_events=offer_events, lines=own, **maps)
    baskets = lines.customer_baskets(as_of)
    everyone = len(baskets["c"])
    if customers is not None:
        customer_map = IdMap.of(pd.Index(baskets["c"]).intersection(customers))
    customer_map = customer_map or IdMap.of(baskets["c"])
    if product_map is None:
        bought = pd.Series(lines.ids()[1]) if transactions is None else transactions[C.PRODUCT_ID]
        product_map = IdMap.of(bought if products is None else pd.concat([bought, products[C.PRODUCT_ID]]))
    counts, spend, decayed, recent = _sums(lines, as_of, customer_map, product_map, rows_only=customers is not None)
    categories, category_of = _categories(products, product_map)
    customer_baskets = _per_row(customer_map, baskets["c"], baskets["baskets"])
    redemptions, history = _offer_history(offer_events, as_of, customer_map)
    if customers is None:
        popularity = np.asarray((recent > 0).sum(axis=0)).ravel() / max(len(customer_map), 1)
    else:
        popularity = _recent_popularity(lines, as_of, product_map, everyone)
    return Snapshot(
        as_of,
        customer_map,
        product_map,
        counts,
        spend,
        decayed,
        recent,
        category_of,
        categories,
        customer_baskets,
        redemptions,
        popularity.astype(np.float32),
        history,
        np.asarray(counts.sum(axis=1)).ravel().astype(np.float32),
    )


def _sums(lines: BasketLines, as_of, customer_map: IdMap, product_map: IdMap, rows_only: bool) -> list:
    """The counts, spend, decayed and recent matrices of the customers and products of the maps."""
    shape = (len(customer_map), len(product_map))
    pairs = lines.pairs(
        as_of,
        half_life_days=HALF_LIFE_DAYS,
        recent_days=RECENT_DAYS,
        rows=customer_map.ids,
        columns=product_map.ids,
        rows_only=rows_only,
    )
    sums = positioned_matrices(pairs, shape, ["baskets", "spend", "decayed"])
    near = pairs["recent"] > 0
    return [*sums, *positioned_matrices({k: pairs[k][near] for k in ("c", "p", "recent")}, shape, ["recent"])]


def _recent_popularity(lines: BasketLines, as_of: pd.Timestamp, product_map: IdMap, customers: int) -> np.ndarray:
    """Each product's share of the ``customers`` buying it in the last RECENT_DAYS: the
    popularity of a snapshot of everyone, from a count of buyers instead of its rows."""
    buyers = lines.recent_buyers(as_of, recent_days=RECENT_DAYS)
    counts = np.zeros(len(product_map), np.int64)
    at = product_map.positions(buyers["p"])
    counts[at[at >= 0]] = buyers["buyers"][at >= 0]
    return counts / max(customers, 1)


def _per_row(id_map: IdMap, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (one per id) at their ids' positions in ``id_map``, 0 elsewhere, as float32."""
    out = np.zeros(len(id_map), np.float32)
    rows = id_map.positions(ids)
    out[rows[rows >= 0]] = values[rows >= 0]
    return out


def _category_matrix(snap: Snapshot, m: sp.csr_matrix) -> sp.csr_matrix:
    """Sum the product columns of ``m`` into category columns."""
    ok = snap.category_of >= 0
    agg = sp.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (np.flatnonzero(ok), snap.category_of[ok])),
        shape=(len(snap.product_map), max(len(snap.categories), 1)),
    )
    return (m @ agg).tocsr()


def _categories(products: pd.DataFrame | None, product_map: IdMap) -> tuple[pd.Index, np.ndarray]:
    """The categories, and the category position of each product (-1 when unknown)."""
    if products is None or C.CATEGORY not in products:
        return pd.Index([]), np.full(len(product_map), -1)
    cat = products.set_index(C.PRODUCT_ID)[C.CATEGORY].reindex(product_map.ids)
    categories = pd.Index(sorted(cat.dropna().unique()))
    return categories, categories.get_indexer(cat.fillna("\0"))


def _offer_history(
    offer_events: pd.DataFrame | None, as_of: pd.Timestamp, customer_map: IdMap
) -> tuple[np.ndarray, pd.DataFrame]:
    """Redemptions per customer, and sends and redemptions per offer, before ``as_of``."""
    redemptions = np.zeros(len(customer_map), np.float32)
    history = pd.DataFrame(columns=["sent", "redeemed"], dtype="float64")
    if offer_events is not None and len(offer_events):
        ev = before(offer_events, as_of)
        red = ev[ev[C.EVENT] == "redeemed"].groupby(C.CUSTOMER_ID).size()
        redemptions = red.reindex(customer_map.ids, fill_value=0).to_numpy(np.float32)
        history = (
            ev.groupby([C.OFFER_ID, C.EVENT])
            .size()
            .unstack(fill_value=0)
            .reindex(columns=["sent", "redeemed"], fill_value=0)
            .astype("float64")
        )
    return redemptions, history
