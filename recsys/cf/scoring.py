"""The CF scoring kernel of offers: each offer's best ALS score among its products, per customer.

An offer targets many products; its CF score for a customer is the largest dot product of the
customer's factors with the factors of the offer's products. ``cf_index`` gathers what that
needs once per catalog; ``cf_max_scores`` scores any number of customers against it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.cf.interactions import IdMap

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CFIndex:
    """What scoring offers by their best product needs, computed once per catalog."""

    items: np.ndarray  # factors of the union of targeted products known to the model
    inverse: np.ndarray  # per targeted (offer, product) entry: its row in ``items``
    starts: np.ndarray  # first entry of each offer with known products
    nonempty: np.ndarray  # offers with at least one known product
    n_offers: int


def cf_index(cf_model, product_map: IdMap, targets: sp.csr_matrix) -> CFIndex:
    pos = cf_model.product_map_.positions(product_map.ids)
    t = targets.tocsr().copy()
    t.data = (pos[t.indices] >= 0).astype(np.float32)
    t.eliminate_zeros()
    t.sort_indices()
    nonempty = np.diff(t.indptr) > 0
    union, inverse = np.unique(t.indices, return_inverse=True)
    items = (
        np.ascontiguousarray(cf_model.item_factors_[pos[union]])
        if len(union)
        else np.zeros((0, cf_model.item_factors_.shape[1]), np.float32)
    )
    return CFIndex(items, inverse, t.indptr[:-1][nonempty], nonempty, t.shape[0])


def cf_max_scores(
    cf_model,
    product_map: IdMap,
    targets: sp.csr_matrix,
    user_vectors: np.ndarray,
    chunk_cells: int = 4_000_000,
    index: CFIndex | None = None,
) -> np.ndarray:
    """Best ALS score among each offer's products, per customer (0 for offers without known products).

    Only the columns of products some offer targets are scored, so the cost grows with the
    catalog's products, not the whole assortment. Customers are scored in chunks of at most
    ``chunk_cells`` (product, customer) scores.
    """
    index = index or cf_index(cf_model, product_map, targets)
    n_c = len(user_vectors)
    if not index.nonempty.any() or n_c == 0:
        return np.zeros((n_c, index.n_offers), np.float32)
    items, inverse, starts, nonempty = index.items, index.inverse, index.starts, index.nonempty
    if n_c <= 16:  # a request's customers: a pass over each one's scores (1-D: twice as fast as 2-D)
        out = np.zeros((n_c, index.n_offers), np.float32)
        scores = user_vectors @ items.T
        for i in range(n_c):
            out[i, nonempty] = np.maximum.reduceat(scores[i].take(inverse), starts)
        return out
    # Many customers: one max per offer over its products' rows, each a vectorised reduction
    # (numpy's reduceat runs element by element, five times slower here).
    bounds = list(zip(starts.tolist(), [*starts[1:].tolist(), len(inverse)]))
    best = np.zeros((index.n_offers, n_c), np.float32)
    rows = np.flatnonzero(nonempty)
    step = max(1, chunk_cells // len(inverse))
    for a in range(0, n_c, step):
        scores = (items @ user_vectors[a : a + step].T)[inverse]  # (offer, product) entries x customers
        for row, (lo, hi) in zip(rows.tolist(), bounds):
            np.max(scores[lo:hi], axis=0, out=best[row, a : a + step])
    return np.ascontiguousarray(best.T)


def customer_vectors(cf_model, customer_ids, known: np.ndarray | None = None) -> np.ndarray:
    """Stored ALS factors of the customers (zeros for customers the model does not know)."""
    pos = cf_model.customer_map_.positions(list(customer_ids))
    have = pos >= 0 if known is None else (pos >= 0) & known
    out = np.zeros((len(pos), cf_model.item_factors_.shape[1]), np.float32)
    out[have] = cf_model.user_factors_[pos[have]]
    return out
