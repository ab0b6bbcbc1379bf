"""Customer x offer affinity features as of a date, computed with sparse products.

An offer targets products: its ``product_ids``, or every product of its ``category`` when it
names a category instead. With ``U`` the customer x product basket counts before ``as_of`` and
``O`` the offer x product targeting matrix, the affinities are matrix products (``U @ O.T``), so
scoring every customer against every offer is one multiplication, and a new offer is scored by
its products without retraining anything. docs/offers.md defines each feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import constants as C
from recsys.interactions import IdMap

OFFER_FEATURES = (
    "hist_count", "hist_spend", "decayed_count", "recent_count", "hist_share", "category_count",
    "category_share", "cf_score", "product_popularity", "offer_products", "customer_baskets",
    "customer_redemptions", "offer_redemption_rate",
)
HALF_LIFE_DAYS = 28.0
RECENT_DAYS = 56


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
    tx = transactions[transactions[C.QUANTITY] > 0] if C.QUANTITY in transactions else transactions
    keys = [C.CUSTOMER_ID, C.PRODUCT_ID, basket]
    tx = tx[list(dict.fromkeys([*keys, C.TIMESTAMP, C.AMOUNT]))].reset_index(drop=True)
    lines = tx.drop_duplicates(keys)
    lines[C.AMOUNT] = lines[C.AMOUNT].clip(lower=0).astype(np.float64)
    # A product scanned more than once in a basket is one line carrying the sum of the amounts.
    dup = tx.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        summed = tx[dup].groupby(keys, sort=False)[C.AMOUNT].sum().clip(lower=0)
        first = lines[dup[lines.index]]
        lines.loc[first.index, C.AMOUNT] = summed.reindex(pd.MultiIndex.from_frame(first[keys])).to_numpy()
    lines = lines.rename(columns={basket: "_basket"}) if basket != C.TIMESTAMP else lines.assign(
        _basket=lines[C.TIMESTAMP])
    return lines.sort_values(C.TIMESTAMP, kind="stable").reset_index(drop=True)


def snapshot(transactions: pd.DataFrame, as_of, *, products: pd.DataFrame | None = None,
             offer_events: pd.DataFrame | None = None, customer_map: IdMap | None = None,
             product_map: IdMap | None = None, lines: pd.DataFrame | None = None) -> Snapshot:
    """Sparse customer x product state from transactions strictly before ``as_of``.

    ``lines`` is :func:`basket_lines` of ``transactions``, when the caller has it already.
    """
    as_of = pd.Timestamp(as_of)
    if lines is None:
        lines = basket_lines(transactions[transactions[C.TIMESTAMP] < as_of])
    lines = lines.iloc[:int(lines[C.TIMESTAMP].searchsorted(as_of, side="left"))]
    customer_map = customer_map or IdMap.of(lines[C.CUSTOMER_ID])
    product_map = product_map or IdMap.of(transactions[C.PRODUCT_ID] if products is None
                                          else pd.concat([transactions[C.PRODUCT_ID], products[C.PRODUCT_ID]]))
    shape = (len(customer_map), len(product_map))
    r_all, c = customer_map.positions(lines[C.CUSTOMER_ID]), product_map.positions(lines[C.PRODUCT_ID])
    ok = (r_all >= 0) & (c >= 0)
    r, c = r_all[ok], c[ok]
    age = ((as_of - lines[C.TIMESTAMP]) / pd.Timedelta(days=1)).to_numpy()[ok]
    counts = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=shape)
    spend = sp.csr_matrix((lines[C.AMOUNT].to_numpy(np.float32)[ok], (r, c)), shape=shape)
    decayed = sp.csr_matrix(((0.5 ** (age / HALF_LIFE_DAYS)).astype(np.float32), (r, c)), shape=shape)
    near = age <= RECENT_DAYS
    recent = sp.csr_matrix((np.ones(int(near.sum()), np.float32), (r[near], c[near])), shape=shape)

    if products is not None and C.CATEGORY in products:
        cat = products.set_index(C.PRODUCT_ID)[C.CATEGORY].reindex(product_map.ids)
        categories = pd.Index(sorted(cat.dropna().unique()))
        category_of = categories.get_indexer(cat.fillna("\0"))
    else:
        categories, category_of = pd.Index([]), np.full(len(product_map), -1)

    per_basket = pd.DataFrame({"r": r_all, "b": lines["_basket"].to_numpy()})
    per_basket = per_basket[per_basket["r"] >= 0].drop_duplicates()
    customer_baskets = np.bincount(per_basket["r"].to_numpy(), minlength=len(customer_map)).astype(np.float32)
    redemptions = np.zeros(len(customer_map), np.float32)
    history = pd.DataFrame(columns=["sent", "redeemed"], dtype="float64")
    if offer_events is not None and len(offer_events):
        ev = offer_events[offer_events[C.TIMESTAMP] < as_of]
        red = ev[ev[C.EVENT] == "redeemed"].groupby(C.CUSTOMER_ID).size()
        redemptions = red.reindex(customer_map.ids, fill_value=0).to_numpy(np.float32)
        history = ev.groupby([C.OFFER_ID, C.EVENT]).size().unstack(fill_value=0).reindex(
            columns=["sent", "redeemed"], fill_value=0).astype("float64")
    popularity = np.asarray((recent > 0).sum(axis=0)).ravel() / max(len(customer_map), 1)
    return Snapshot(as_of, customer_map, product_map, counts, spend, decayed, recent, category_of, categories,
                    customer_baskets, redemptions, popularity.astype(np.float32), history,
                    np.asarray(counts.sum(axis=1)).ravel().astype(np.float32))


def _category_matrix(snap: Snapshot, m: sp.csr_matrix) -> sp.csr_matrix:
    """Sum the product columns of ``m`` into category columns."""
    ok = snap.category_of >= 0
    agg = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (np.flatnonzero(ok), snap.category_of[ok])),
                        shape=(len(snap.product_map), max(len(snap.categories), 1)))
    return (m @ agg).tocsr()


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
    items = np.ascontiguousarray(cf_model.item_factors_[pos[union]]) if len(union) else \
        np.zeros((0, cf_model.item_factors_.shape[1]), np.float32)
    return CFIndex(items, inverse, t.indptr[:-1][nonempty], nonempty, t.shape[0])


def cf_max_scores(cf_model, product_map: IdMap, targets: sp.csr_matrix, user_vectors: np.ndarray,
                  chunk_cells: int = 4_000_000, index: CFIndex | None = None) -> np.ndarray:
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
        scores = (items @ user_vectors[a:a + step].T)[inverse]  # (offer, product) entries x customers
        for row, (lo, hi) in zip(rows.tolist(), bounds):
            np.max(scores[lo:hi], axis=0, out=best[row, a:a + step])
    return np.ascontiguousarray(best.T)


def customer_vectors(cf_model, customer_ids, known: np.ndarray | None = None) -> np.ndarray:
    """Stored ALS factors of the customers (zeros for customers the model does not know)."""
    pos = cf_model.customer_map_.positions(list(customer_ids))
    have = pos >= 0 if known is None else (pos >= 0) & known
    out = np.zeros((len(pos), cf_model.item_factors_.shape[1]), np.float32)
    out[have] = cf_model.user_factors_[pos[have]]
    return out


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
    return Catalog(offers, targets, targets_t, cats_t, targets_t[used].toarray().astype(np.float32), slot,
                   cats_t.toarray().astype(np.float32) if cats_t is not None else None,
                   cf_index(cf_model, snap.product_map, targets) if cf_model is not None else None,
                   pop.astype(np.float32), np.log1p(n_targets).astype(np.float32), rate)


def affinity_features(snap: Snapshot, catalog: Catalog, customer_rows: np.ndarray, *, cf_model=None,
                      user_vectors: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Feature matrices (len(customer_rows) x len(catalog)) keyed by OFFER_FEATURES.

    ``customer_rows`` are positions in ``snap.customer_map``; -1 is a customer without history
    (all their purchase features are 0). ``user_vectors`` overrides the ALS factors per row.
    """
    n_c, n_o = len(customer_rows), len(catalog)
    known = customer_rows >= 0
    rows = np.where(known, customer_rows, 0)

    few = n_c <= 8  # a request's customer or two: dense row arithmetic beats sparse products

    def per_pair(m: sp.csr_matrix, t: sp.csr_matrix, dense: np.ndarray | None = None,
                 slot: np.ndarray | None = None) -> np.ndarray:
        if few and dense is not None:
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

    def dense_pair(m: sp.csr_matrix) -> np.ndarray:
        return per_pair(m, catalog.targets_t, catalog.dense_targets, catalog.dense_slot)

    hist = dense_pair(snap.counts)
    total = np.where(known, snap.customer_lines[rows], 0.0)
    f = {"hist_count": hist, "hist_spend": dense_pair(snap.spend), "decayed_count": dense_pair(snap.decayed),
         "recent_count": dense_pair(snap.recent), "hist_share": hist / np.maximum(total, 1)[:, None]}
    if catalog.offer_cats_t is not None:
        f["category_count"] = per_pair(snap.category_counts, catalog.offer_cats_t, catalog.dense_cats)
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


def feature_matrix(features: dict[str, np.ndarray]) -> np.ndarray:
    """All pairs as rows (customer-major), OFFER_FEATURES as columns."""
    return np.column_stack([np.ravel(features[n]) for n in OFFER_FEATURES])


def stack(features: dict[str, np.ndarray], rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> np.ndarray:
    """Pairs as rows, OFFER_FEATURES as columns: all pairs, or the (rows[i], cols[i]) pairs."""
    if rows is None:
        return np.column_stack([np.ravel(features[n]) for n in OFFER_FEATURES])
    return np.column_stack([features[n][rows, cols] for n in OFFER_FEATURES])
