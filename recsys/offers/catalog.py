"""A catalog of offers prepared against a snapshot: each offer's products and categories and
everything per offer that does not depend on the customer.

An offer targets products: its ``product_ids``, or every product of its ``category`` when it
names a category instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import constants as C
from recsys.cf import IdMap
from recsys.cf.scoring import CFIndex, cf_index
from recsys.offers.snapshot import Snapshot, _category_matrix

logger = logging.getLogger(__name__)


def offer_targets(offers: pd.DataFrame, products: pd.DataFrame | None, product_map: IdMap) -> sp.csr_matrix:
    """Binary offers x products matrix of each offer's products (known products only)."""
    rows, cols = [], []
    by_category = None
    if products is not None and C.CATEGORY in products:
        known = products[products[C.PRODUCT_ID].isin(product_map.ids)]
        by_category = known.groupby(C.CATEGORY)[C.PRODUCT_ID].agg(list)
    lists = offers[C.PRODUCT_IDS] if C.PRODUCT_IDS in offers else pd.Series([None] * len(offers))
    cats = offers[C.CATEGORY] if C.CATEGORY in offers else pd.Series([None] * len(offers))
    for i, (ids, cat) in enumerate(zip(lists, cats)):
        if ids is None or (not isinstance(ids, (list, tuple, np.ndarray))) or len(ids) == 0:
            ids = by_category.get(cat, []) if by_category is not None and isinstance(cat, str) else []
        pos = product_map.positions(list(ids))
        pos = np.unique(pos[pos >= 0])
        rows.append(np.full(len(pos), i))
        cols.append(pos)
    r = np.concatenate(rows) if rows else np.array([], int)
    c = np.concatenate(cols) if cols else np.array([], int)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(offers), len(product_map)))


def offer_categories(snap: Snapshot, targets: sp.csr_matrix) -> sp.csr_matrix:
    """Binary offers x categories matrix: the categories of each offer's products."""
    m = _category_matrix(snap, targets)
    m.data[:] = 1.0
    return m


@dataclass
class Catalog:
    """A catalog of offers prepared against a snapshot: everything per offer that does not depend
    on the customer, computed once so that ranking one customer costs only their own row."""

    offers: pd.DataFrame
    targets: sp.csr_matrix  # offers x products
    targets_t: sp.csr_matrix  # products x offers, for row @ targets_t
    offer_cats_t: sp.csr_matrix | None  # categories x offers
    dense_targets: np.ndarray  # targeted products x offers, dense, for one customer at a time
    dense_slot: np.ndarray  # per product: its row in dense_targets, -1 if no offer targets it
    dense_cats: np.ndarray | None  # categories x offers, dense
    cf: CFIndex | None
    product_popularity: np.ndarray
    offer_products: np.ndarray
    offer_redemption_rate: np.ndarray

    def __len__(self) -> int:
        return len(self.offers)


def prepare_catalog(snap: Snapshot, offers: pd.DataFrame, products: pd.DataFrame | None, cf_model=None) -> Catalog:
    offers = offers.reset_index(drop=True)
    targets = offer_targets(offers, products, snap.product_map)
    cats_t = offer_categories(snap, targets).T.tocsr() if len(snap.categories) else None
    n_targets = np.asarray(targets.sum(axis=1)).ravel()
    pop = np.minimum(np.asarray(targets @ snap.product_popularity).ravel(), 1.0)
    h = snap.offer_history.reindex(offers[C.OFFER_ID].to_numpy())
    rate = ((h["redeemed"].fillna(0) + 0.1) / (h["sent"].fillna(0) + 50.0)).to_numpy(np.float32)
    targets_t = targets.T.tocsr()
    used = np.flatnonzero(np.diff(targets_t.indptr) > 0)
    slot = np.full(targets.shape[1], -1, dtype=np.intp)
    slot[used] = np.arange(len(used))
    return Catalog(
        offers,
        targets,
        targets_t,
        cats_t,
        targets_t[used].toarray().astype(np.float32),
        slot,
        cats_t.toarray().astype(np.float32) if cats_t is not None else None,
        cf_index(cf_model, snap.product_map, targets) if cf_model is not None else None,
        pop.astype(np.float32),
        np.log1p(n_targets).astype(np.float32),
        rate,
    )


def no_valid_offer(catalog: pd.DataFrame, day) -> str | None:
    """Why nothing can be offered on ``day``, when no offer of ``catalog`` is valid then; None
    when some offer is."""
    day = pd.Timestamp(day).normalize()
    if len(catalog) and ((catalog[C.START_DATE] <= day) & (catalog[C.END_DATE] >= day)).any():
        return None
    if not len(catalog):
        return "the offer catalog is empty"
    first, last = catalog[C.START_DATE].min(), catalog[C.END_DATE].max()
    return (
        f"no offer of the catalog is valid on {day:%Y-%m-%d}: its offers run from {first:%Y-%m-%d} to "
        f"{last:%Y-%m-%d}; ask for a day in that range (as_of) or load a current catalog"
    )
