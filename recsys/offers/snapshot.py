"""What is known about customers at a date: sparse customer x product purchase state.

``basket_lines`` reduces transactions to one row per (customer, product, basket) once;
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


def basket_lines(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer, product, basket) bought (returns left out) with its amount, sorted
    by time: what every snapshot counts. Computed once, it serves snapshots at many dates."""
    basket = C.BASKET_ID if C.BASKET_ID in transactions else C.TIMESTAMP
    keys = [C.CUSTOMER_ID, C.PRODUCT_ID, basket]
    tx = transactions[list(dict.fromkeys([*keys, C.TIMESTAMP, C.AMOUNT]))]  # the columns needed, then the rows
    if C.QUANTITY in transactions:
        tx = tx[transactions[C.QUANTITY].to_numpy() > 0]
    tx = tx.reset_index(drop=True)
    lines = tx.drop_duplicates(keys)
    lines[C.AMOUNT] = lines[C.AMOUNT].clip(lower=0).astype(np.float64)
    # A product scanned more than once in a basket is one line carrying the sum of the amounts.
    dup = tx.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        summed = tx[dup].groupby(keys, sort=False)[C.AMOUNT].sum().clip(lower=0)
        first = lines[dup[lines.index]]
        lines.loc[first.index, C.AMOUNT] = summed.reindex(pd.MultiIndex.from_frame(first[keys])).to_numpy()
    lines = (
        lines.rename(columns={basket: "_basket"}) if basket != C.TIMESTAMP else lines.assign(_basket=lines[C.TIMESTAMP])
    )
    return lines.sort_values(C.TIMESTAMP, kind="stable").reset_index(drop=True)


def snapshot(
    transactions: pd.DataFrame,
    as_of,
    *,
    products: pd.DataFrame | None = None,
    offer_events: pd.DataFrame | None = None,
    customer_map: IdMap | None = None,
    product_map: IdMap | None = None,
    lines: pd.DataFrame | None = None,
) -> Snapshot:
    """Sparse customer x product state from transactions strictly before ``as_of``.

    ``lines`` is :func:`basket_lines` of ``transactions``, when the caller has it already.
    """
    as_of = pd.Timestamp(as_of)
    if lines is None:
        lines = basket_lines(before(transactions, as_of))
    lines = lines.iloc[: int(lines[C.TIMESTAMP].searchsorted(as_of, side="left"))]
    customer_map = customer_map or IdMap.of(lines[C.CUSTOMER_ID])
    product_map = product_map or IdMap.of(
        transactions[C.PRODUCT_ID]
        if products is None
        else pd.concat([transactions[C.PRODUCT_ID], products[C.PRODUCT_ID]])
    )
    shape = (len(customer_map), len(product_map))
    r_all, c = customer_map.positions(lines[C.CUSTOMER_ID]), product_map.positions(lines[C.PRODUCT_ID])
    ok = (r_all >= 0) & (c >= 0)
    r, c = r_all[ok], c[ok]
    age = ((as_of - lines[C.TIMESTAMP]) / pd.Timedelta(days=1)).to_numpy()[ok]
    weights = [np.ones(len(r), np.float32), lines[C.AMOUNT].to_numpy(np.float32)[ok], _decay(age)]
    counts, spend, decayed = summed_matrices(r, c, shape, weights)
    near = age <= RECENT_DAYS
    (recent,) = summed_matrices(r[near], c[near], shape, [np.ones(int(near.sum()), np.float32)])

    categories, category_of = _categories(products, product_map)
    customer_baskets = _baskets_per_customer(r_all, lines["_basket"].to_numpy(), len(customer_map))
    redemptions, history = _offer_history(offer_events, as_of, customer_map)
    popularity = np.asarray((recent > 0).sum(axis=0)).ravel() / max(len(customer_map), 1)
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


def _decay(age_days: np.ndarray) -> np.ndarray:
    """Each line's weight in ``decayed``: 0.5 ** (age / HALF_LIFE_DAYS)."""
    return (0.5 ** (age_days / HALF_LIFE_DAYS)).astype(np.float32)


def summed_matrices(r: np.ndarray, c: np.ndarray, shape: tuple[int, int], values: list) -> list[sp.csr_matrix]:
    """Per array of ``values``, the matrix of its sums over each (row ``r``, column ``c``) pair,
    in float32; the matrices share one sparsity pattern (one array of indices for all).

    The pairs are sorted once (stable: equal pairs keep their order and are summed in it),
    where building each matrix from coordinates would copy and sort them once per matrix:
    at ten times The Complete Journey, 15 million pairs and hundreds of megabytes a matrix.
    """
    key = r.astype(np.int64) * shape[1] + c
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    key = key[starts]
    indices = (key % shape[1]).astype(np.int32)
    indptr = np.searchsorted(key // shape[1], np.arange(shape[0] + 1)).astype(np.int32)
    del key
    out = []
    for v in values:
        data = np.add.reduceat(v[order], starts) if len(starts) else np.zeros(0, np.float32)
        m = sp.csr_matrix((data.astype(np.float32, copy=False), indices, indptr), shape=shape)
        m.has_sorted_indices = True  # sorted by construction: nothing may sort the shared arrays
        out.append(m)
    return out


def _baskets_per_customer(rows: np.ndarray, baskets: np.ndarray, n_customers: int) -> np.ndarray:
    """How many distinct baskets each customer row holds (rows -1 left out): one sort of the
    (row, basket) pairs instead of a hash table of them."""
    keep = rows >= 0
    rows, baskets = rows[keep], baskets[keep]
    if baskets.dtype.kind not in "iumM":  # text ids: their codes
        baskets = pd.factorize(baskets)[0]
    order = np.lexsort((baskets, rows))
    rows, baskets = rows[order], baskets[order]
    new = np.ones(len(rows), bool)
    new[1:] = (rows[1:] != rows[:-1]) | (baskets[1:] != baskets[:-1])
    return np.bincount(rows[new], minlength=n_customers).astype(np.float32)


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
