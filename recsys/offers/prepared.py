"""A catalog prepared for ranking: its offers' eligibility rules, economics and departments as
arrays, computed once per catalog so that ranking a request costs only its customers' rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import constants as C
from recsys.offers.catalog import Catalog, prepare_catalog
from recsys.offers.economics import offer_economics
from recsys.offers.scores import ScoreTable
from recsys.offers.snapshot import Snapshot


@dataclass
class PreparedOffers:
    """A catalog prepared by :meth:`OfferRanker.prepare`."""

    catalog: Catalog
    offer_ids: np.ndarray
    index: pd.Index
    start: np.ndarray
    end: np.ndarray
    channels: list
    segments: list
    min_risk: np.ndarray
    max_risk: np.ndarray
    max_redemptions: np.ndarray
    value_to_business: np.ndarray
    cost: np.ndarray
    department: np.ndarray
    offer_type: np.ndarray
    retention: np.ndarray
    control_share: np.ndarray  # the offer's own control share, NaN for the default
    position: dict  # offer_id -> column
    scores: ScoreTable | None = None  # scores computed ahead (recsys.offers.scores), when kept
    orders: dict = field(default_factory=dict)  # (day, channel) -> recsys.offers.orders.OrderTable, with scores

    @property
    def offers(self) -> pd.DataFrame:
        return self.catalog.offers

    def __post_init__(self):
        # Integer codes for the diversity rule (one customer's ranking loops over them).
        self.department_code = pd.factorize(pd.Series(self.department, dtype=object).fillna(""))[0].tolist()
        self.department_blank = [d == "" for d in self.department]
        self.type_code = pd.factorize(pd.Series(self.offer_type, dtype=object))[0].tolist()
        self.n_departments = max(self.department_code) + 1 if self.department_code else 1
        self.n_types = max(self.type_code) + 1 if self.type_code else 1
        self.any_blank_department = any(self.department_blank)
        self.group_code = same_offer_groups(self.catalog.offers)
        # Python values for the control draws (one customer's draws index them a few at a time)
        self.offer_id_list = self.offer_ids.tolist()
        self.control_share_list = self.control_share.tolist()


def same_offer_groups(offers: pd.DataFrame) -> list[int]:
    """Per offer, a group shared with every offer of the same name (case and spacing aside) or
    the same products: to a customer these are one offer, and an answer holds one of them."""
    n = len(offers)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys: list[pd.Series] = []
    if C.NAME in offers:
        keys.append(offers[C.NAME].astype("string").str.casefold().str.split().str.join(" "))
    if C.PRODUCT_IDS in offers:
        keys.append(offers[C.PRODUCT_IDS].map(lambda v: None if _as_list(v) is None else tuple(sorted(set(v)))))
    for key in keys:
        first: dict = {}
        for i, v in enumerate(key.tolist()):
            if v is None or v is pd.NA or v == "" or v == ():
                continue
            j = first.setdefault(v, i)
            if j != i:
                parent[find(i)] = find(j)
    return [find(i) for i in range(n)]


def _as_list(v) -> list | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    return None


def prepare_offers(
    snap: Snapshot, offers: pd.DataFrame, products: pd.DataFrame | None, cf_model, prices: np.ndarray
) -> PreparedOffers:
    """Prepare ``offers`` against ``snap``: targets and CF index (recsys.offers.catalog), value
    and cost (recsys.offers.economics), eligibility bounds, departments and types.

    ``prices`` is the mean price of each product of ``snap.product_map``.
    """
    catalog = prepare_catalog(snap, offers, products, cf_model)
    offers = catalog.offers
    business, cost = offer_economics(offers, catalog.targets, prices)
    channels = [_as_list(v) for v in offers[C.CHANNELS]] if C.CHANNELS in offers else [None] * len(offers)
    segments = [_as_list(v) for v in offers[C.SEGMENTS]] if C.SEGMENTS in offers else [None] * len(offers)

    def bound(col):
        return offers[col].to_numpy(np.float64, na_value=np.nan) if col in offers else np.full(len(offers), np.nan)

    return PreparedOffers(
        catalog=catalog,
        offer_ids=offers[C.OFFER_ID].to_numpy(),
        index=pd.Index(offers[C.OFFER_ID]),
        start=offers[C.START_DATE].to_numpy("datetime64[ns]"),
        end=offers[C.END_DATE].to_numpy("datetime64[ns]"),
        channels=channels,
        segments=segments,
        min_risk=bound(C.MIN_CHURN_RISK),
        max_risk=bound(C.MAX_CHURN_RISK),
        max_redemptions=bound(C.MAX_REDEMPTIONS),
        value_to_business=business,
        cost=cost,
        department=offer_departments(snap, catalog.targets, products),
        offer_type=offers[C.OFFER_TYPE].to_numpy(),
        retention=~np.isnan(bound(C.MIN_CHURN_RISK)),
        control_share=bound(C.CONTROL_SHARE),
        position={o: j for j, o in enumerate(offers[C.OFFER_ID].tolist())},
    )


def offer_departments(snap: Snapshot, targets: sp.csr_matrix, products: pd.DataFrame | None) -> np.ndarray:
    """The department most of each offer's products belong to ("" when unknown)."""
    if products is None or C.DEPARTMENT not in products:
        return np.full(targets.shape[0], "", dtype=object)
    dept = products.set_index(C.PRODUCT_ID)[C.DEPARTMENT].reindex(snap.product_map.ids)
    codes, names = pd.factorize(dept.fillna(""))
    out = np.full(targets.shape[0], "", dtype=object)
    t = targets.tocsr()
    for i in range(t.shape[0]):
        cols = t.indices[t.indptr[i] : t.indptr[i + 1]]
        if len(cols):
            out[i] = names[np.bincount(codes[cols]).argmax()]
    return out
