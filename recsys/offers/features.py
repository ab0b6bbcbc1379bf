"""Customer x offer affinity features, computed with sparse products.

With ``U`` the customer x product basket counts before ``as_of`` and ``O`` the offer x product
targeting matrix, the affinities are matrix products (``U @ O.T``), so scoring every customer
against every offer is one multiplication, and a new offer is scored by its products without
retraining anything. docs/offers.md defines each feature.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from recsys.cf.scoring import cf_max_scores, customer_vectors
from recsys.offers.catalog import Catalog
from recsys.offers.snapshot import Snapshot

logger = logging.getLogger(__name__)

OFFER_FEATURES = (
    "hist_count",
    "hist_spend",
    "decayed_count",
    "recent_count",
    "hist_share",
    "category_count",
    "category_share",
    "cf_score",
    "product_popularity",
    "offer_products",
    "customer_baskets",
    "customer_redemptions",
    "offer_redemption_rate",
)


def affinity_features(
    snap: Snapshot,
    catalog: Catalog,
    customer_rows: np.ndarray,
    *,
    cf_model=None,
    user_vectors: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Feature matrices (len(customer_rows) x len(catalog)) keyed by OFFER_FEATURES.

    ``customer_rows`` are positions in ``snap.customer_map``; -1 is a customer without history
    (all their purchase features are 0). ``user_vectors`` overrides the ALS factors per row.
    """
    n_c, n_o = len(customer_rows), len(catalog)
    known = customer_rows >= 0
    rows = np.where(known, customer_rows, 0)

    def dense_pair(m: sp.csr_matrix) -> np.ndarray:
        return _pair_sums(m, catalog.targets_t, rows, known, n_o, catalog.dense_targets, catalog.dense_slot)

    hist = dense_pair(snap.counts)
    total = np.where(known, snap.customer_lines[rows], 0.0)
    f = {
        "hist_count": hist,
        "hist_spend": dense_pair(snap.spend),
        "decayed_count": dense_pair(snap.decayed),
        "recent_count": dense_pair(snap.recent),
        "hist_share": hist / np.maximum(total, 1)[:, None],
    }
    if catalog.offer_cats_t is not None:
        f["category_count"] = _pair_sums(
            snap.category_counts, catalog.offer_cats_t, rows, known, n_o, catalog.dense_cats
        )
        f["category_share"] = f["category_count"] / np.maximum(total, 1)[:, None]
    else:
        f["category_count"] = f["hist_count"].copy()
        f["category_share"] = f["hist_share"].copy()
    if cf_model is not None:
        if user_vectors is None:
            user_vectors = customer_vectors(cf_model, snap.customer_map.ids[rows], known)
        f["cf_score"] = cf_max_scores(cf_model, snap.product_map, catalog.targets, user_vectors, index=catalog.cf)
    else:
        f["cf_score"] = np.zeros((n_c, n_o), np.float32)
    f["product_popularity"] = np.broadcast_to(catalog.product_popularity, (n_c, n_o))
    f["offer_products"] = np.broadcast_to(catalog.offer_products, (n_c, n_o))
    baskets = np.where(known, snap.customer_baskets[rows], 0).astype(np.float32)
    f["customer_baskets"] = np.broadcast_to(np.log1p(baskets)[:, None], (n_c, n_o))
    redemptions = np.where(known, snap.customer_redemptions[rows], 0).astype(np.float32)
    f["customer_redemptions"] = np.broadcast_to(redemptions[:, None], (n_c, n_o))
    f["offer_redemption_rate"] = np.broadcast_to(catalog.offer_redemption_rate, (n_c, n_o))
    return f


def _pair_sums(
    m: sp.csr_matrix,
    t: sp.csr_matrix,
    rows: np.ndarray,
    known: np.ndarray,
    n_o: int,
    dense: np.ndarray | None = None,
    slot: np.ndarray | None = None,
) -> np.ndarray:
    """``m[rows] @ t`` as dense float32 (customers x offers), 0 for unknown customers.

    A request's customer or two (8 at most) take dense row arithmetic on ``dense`` (the rows of
    ``t`` some offer uses, ``slot`` giving each column's row), which beats sparse products there.
    """
    n_c = len(rows)
    if n_c <= 8 and dense is not None:
        out = np.zeros((n_c, n_o), np.float32)
        for i, r in enumerate(rows):
            if known[i]:
                lo, hi = m.indptr[r], m.indptr[r + 1]
                cols, vals = m.indices[lo:hi], m.data[lo:hi]
                if slot is not None:
                    s = slot[cols]
                    cols, vals = s[s >= 0], vals[s >= 0]
                out[i] = vals @ dense[cols]
        return out
    out = (m[rows] @ t).toarray().astype(np.float32, copy=False)
    out[~known] = 0.0
    return out


def feature_matrix(
    features: dict[str, np.ndarray], rows: np.ndarray | None = None, cols: np.ndarray | None = None
) -> np.ndarray:
    """Pairs as rows (customer-major), OFFER_FEATURES as columns: all pairs, or the
    ``(rows[i], cols[i])`` pairs."""
    if rows is None:
        return np.column_stack([np.ravel(features[n]) for n in OFFER_FEATURES])
    return np.column_stack([features[n][rows, cols] for n in OFFER_FEATURES])
