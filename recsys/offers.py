"""The offer-ranking engine: which eligible offers to send a customer, in what order and why.

``OfferRanker.fit`` learns from the past (collaborative filtering, the customer snapshot, the
redemption model); ``rank_many`` scores today's catalog for many customers at once:

1. affinity features per (customer, offer) (recsys.offer_features) and P(redeem)
   (recsys.redemption);
2. eligibility: validity dates, channel, allowed segments, churn-risk range, redemptions per
   customer, a frequency cap on recent sends, explicit exclusions;
3. objective: expected value = P(redeem) x (value to the business - cost); customers at risk of
   churning get retention offers (offers with a ``min_churn_risk``) first;
4. diversity: at most ``max_per_department`` offers of one department and ``max_per_type`` of
   one offer type in the top k, unless too few offers remain to fill it;
5. a reason in plain words.

docs/offers.md documents every rule and default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from recsys import constants as C
from recsys.cf import ALSRecommender
from recsys.interactions import IdMap
from recsys.offer_features import (Catalog, affinity_features, basket_lines, prepare_catalog,
                                   snapshot)
from recsys.redemption import RedemptionModel, redemption_examples

logger = logging.getLogger(__name__)

RANKING_COLUMNS = [C.CUSTOMER_ID, "rank", C.OFFER_ID, "score", "p_redeem", "expected_value", "reason",
                   "cold_start"]
# Cost of an offer when the catalog has no ``cost``: per offer type, as a function of its value
# and the average price of its products (docs/offers.md).
_COST_RULES = {
    "amount_off": lambda value, price: value,
    "percent_off": lambda value, price: value / 100.0 * price,
    "bogo": lambda value, price: price,
    "points_multiplier": lambda value, price: 0.01 * (value - 1.0) * price,
    "free_shipping": lambda value, price: value,
    "free_trial": lambda value, price: value,
    "gift": lambda value, price: value,
}

REASON_HISTORY = "you often buy these"
REASON_CF = "popular with customers like you"
REASON_RETENTION = "we miss you"
REASON_POPULAR = "popular right now"
REASONS = np.array([REASON_POPULAR, REASON_CF, REASON_HISTORY, REASON_RETENTION], dtype=object)  # by code


BASKET_UNITS = 2.0  # value of a redemption to the business: about two units of the offer's products
RETENTION_BONUS = 1e6  # puts retention offers ahead of any expected value for customers at risk


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
    position: dict  # offer_id -> column

    def __post_init__(self):
        # Integer codes for the diversity rule (one customer's ranking loops over them).
        self.department_code = pd.factorize(pd.Series(self.department, dtype=object).fillna(""))[0].tolist()
        self.department_blank = [d == "" for d in self.department]
        self.type_code = pd.factorize(pd.Series(self.offer_type, dtype=object))[0].tolist()
        self.n_departments = max(self.department_code) + 1 if self.department_code else 1
        self.n_types = max(self.type_code) + 1 if self.type_code else 1
        self.any_blank_department = any(self.department_blank)

    @property
    def offers(self) -> pd.DataFrame:
        return self.catalog.offers


class InvalidRequestError(ValueError):
    """A ranking request names an unknown channel, a bad k or similar."""


@dataclass(frozen=True)
class EventArrays:
    """Offer events as plain arrays: what an event store hands the ranker for a request."""

    customer_id: np.ndarray
    offer_id: np.ndarray
    event: np.ndarray  # "sent", "viewed", "redeemed"
    timestamp: np.ndarray  # datetime64[ns]

    @classmethod
    def from_frame(cls, events: pd.DataFrame) -> "EventArrays":
        return cls(events[C.CUSTOMER_ID].to_numpy(dtype=object), events[C.OFFER_ID].to_numpy(dtype=object),
                   events[C.EVENT].to_numpy(dtype=object), events[C.TIMESTAMP].to_numpy("datetime64[ns]"))

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass(frozen=True)
class EligibilityRules:
    frequency_cap: int = 3  # an offer is not sent more than this many times ...
    frequency_days: int = 30  # ... in this many days
    at_risk_threshold: float = C.RISK_BANDS[1]  # churn probability (the high band) from which retention offers come first


def _as_list(v) -> list | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    return None


class OfferRanker(BaseEstimator):
    """Fitted on a dataset as of a date; ranks any catalog of offers afterwards."""

    def __init__(self, als_params: dict | None = None, redemption_kind: str = "logistic",
                 max_per_department: int = 3, max_per_type: int = 4, rules: EligibilityRules | None = None,
                 random_state: int = C.SEED):
        self.als_params = als_params
        self.redemption_kind = redemption_kind
        self.max_per_department = max_per_department
        self.max_per_type = max_per_type
        self.rules = rules
        self.random_state = random_state

    def fit(self, ds, as_of=None, *, cf_model: ALSRecommender | None = None, churn: pd.Series | None = None,
            segments: pd.Series | None = None) -> "OfferRanker":
        """``churn``: churn probability per customer_id; ``segments``: segment name per customer_id."""
        as_of = pd.Timestamp(as_of) if as_of is not None else ds.transactions[C.TIMESTAMP].max().normalize() + pd.Timedelta(days=1)
        tx = ds.transactions[ds.transactions[C.TIMESTAMP] < as_of]
        events = ds.offer_events[ds.offer_events[C.TIMESTAMP] < as_of] if ds.offer_events is not None else None
        self.as_of_ = as_of
        self.cf_model_ = cf_model if cf_model is not None else ALSRecommender(
            **(self.als_params or {}), random_state=self.random_state).fit(tx)
        self.products_ = ds.products
        lines = basket_lines(tx)
        self.snapshot_ = snapshot(tx, as_of, products=ds.products, offer_events=events,
                                  product_map=self.cf_model_.product_map_, lines=lines)
        examples = (redemption_examples(tx, ds.offers, events, as_of, products=ds.products, cf_model=self.cf_model_,
                                        lines=lines)
                    if ds.offers is not None else pd.DataFrame(columns=["redeemed"]))
        self.redemption_model_ = RedemptionModel(kind=self.redemption_kind, random_state=self.random_state).fit(
            examples)
        self.training_examples_ = len(examples)
        price = tx[tx[C.QUANTITY] > 0].groupby(C.PRODUCT_ID)[C.AMOUNT].mean() if C.QUANTITY in tx else \
            tx.groupby(C.PRODUCT_ID)[C.AMOUNT].mean()
        self.price_ = price.reindex(self.snapshot_.product_map.ids).to_numpy(np.float64)
        self.churn_ = churn.astype("float64") if churn is not None else pd.Series(dtype="float64")
        self.segments_ = segments.astype(object) if segments is not None else pd.Series(dtype=object)
        return self

    def _risk(self, ids: pd.Index) -> np.ndarray:
        if len(ids) <= 8:
            return np.array([self.churn_.get(c, np.nan) for c in ids], dtype=np.float64)
        return self.churn_.reindex(ids).to_numpy(np.float64)

    def _segment(self, ids: pd.Index) -> np.ndarray:
        if len(ids) <= 8:
            return np.array([self.segments_.get(c, None) for c in ids], dtype=object)
        return self.segments_.reindex(ids).to_numpy(dtype=object)

    # ----------------------------------------------------------------- catalog

    def _rules(self) -> EligibilityRules:
        return self.rules or EligibilityRules()

    def prepare(self, offers: pd.DataFrame) -> "PreparedOffers":
        """Per-offer work done once per catalog (targets, economics, departments); pass the result
        to :meth:`rank_many` instead of the frame when ranking many requests."""
        check_is_fitted(self, "snapshot_")
        catalog = prepare_catalog(self.snapshot_, offers, self.products_, self.cf_model_)
        offers = catalog.offers
        n = np.asarray(catalog.targets.sum(axis=1)).ravel()
        prices = np.nan_to_num(self.price_, nan=0.0)
        avg_price = np.asarray(catalog.targets @ prices).ravel() / np.maximum(n, 1)
        avg_price = np.where(n > 0, avg_price, prices[prices > 0].mean() if (prices > 0).any() else 0.0)
        value = offers[C.VALUE].to_numpy(np.float64)
        rule_cost = np.array([_COST_RULES.get(t, _COST_RULES["gift"])(v, p)
                              for t, v, p in zip(offers[C.OFFER_TYPE], value, avg_price)], dtype=np.float64)
        cost = offers[C.COST].to_numpy(np.float64, na_value=np.nan) if C.COST in offers else rule_cost
        cost = np.where(np.isnan(cost), rule_cost, cost)
        business = (offers["business_value"].to_numpy(np.float64) if "business_value" in offers
                    else BASKET_UNITS * avg_price)
        channels = [_as_list(v) for v in offers[C.CHANNELS]] if C.CHANNELS in offers else [None] * len(offers)
        segments = [_as_list(v) for v in offers[C.SEGMENTS]] if C.SEGMENTS in offers else [None] * len(offers)

        def bound(col):
            return offers[col].to_numpy(np.float64, na_value=np.nan) if col in offers else np.full(len(offers), np.nan)

        return PreparedOffers(
            catalog=catalog, offer_ids=offers[C.OFFER_ID].to_numpy(), index=pd.Index(offers[C.OFFER_ID]),
            start=offers[C.START_DATE].to_numpy("datetime64[ns]"), end=offers[C.END_DATE].to_numpy("datetime64[ns]"),
            channels=channels, segments=segments, min_risk=bound(C.MIN_CHURN_RISK), max_risk=bound(C.MAX_CHURN_RISK),
            max_redemptions=bound(C.MAX_REDEMPTIONS), value_to_business=business, cost=cost,
            department=self._offer_departments(catalog.targets), offer_type=offers[C.OFFER_TYPE].to_numpy(),
            retention=~np.isnan(bound(C.MIN_CHURN_RISK)),
            position={o: j for j, o in enumerate(offers[C.OFFER_ID].tolist())})

    def _offer_departments(self, targets) -> np.ndarray:
        if self.products_ is None or C.DEPARTMENT not in self.products_:
            return np.full(targets.shape[0], "", dtype=object)
        dept = self.products_.set_index(C.PRODUCT_ID)[C.DEPARTMENT].reindex(self.snapshot_.product_map.ids)
        codes, names = pd.factorize(dept.fillna(""))
        out = np.full(targets.shape[0], "", dtype=object)
        t = targets.tocsr()
        for i in range(t.shape[0]):
            cols = t.indices[t.indptr[i]:t.indptr[i + 1]]
            if len(cols):
                out[i] = names[np.bincount(codes[cols]).argmax()]
        return out

    def eligibility(self, customer_ids: pd.Index, prepared: "PreparedOffers", as_of: pd.Timestamp,
                    channel: str | None, events: "pd.DataFrame | EventArrays | None", exclude=()) -> np.ndarray:
        """Boolean customers x offers matrix of what may be sent (docs/offers.md lists the rules)."""
        rules = self._rules()
        day = np.datetime64(as_of.normalize(), "ns")
        ok = (prepared.start <= day) & (prepared.end >= day)
        if channel is not None:
            ok &= np.array([lst is None or channel in lst for lst in prepared.channels], dtype=bool)
        if len(exclude):
            ok &= ~prepared.index.isin(list(exclude))
        m = np.repeat(ok[None, :], len(customer_ids), axis=0)
        restricted = [j for j, lst in enumerate(prepared.segments) if lst is not None]
        if restricted:
            seg = self._segment(customer_ids)
            for j in restricted:
                m[:, j] &= np.isin(seg, prepared.segments[j])
        risk = None
        for bound, cmp in ((prepared.min_risk, np.greater_equal), (prepared.max_risk, np.less_equal)):
            has = ~np.isnan(bound)
            if has.any():
                risk = self._risk(customer_ids) if risk is None else risk
                with np.errstate(invalid="ignore"):
                    m[:, has] &= cmp(risk[:, None], bound[None, has])  # an unknown risk fails any bound
        if events is not None and len(events):
            if isinstance(events, pd.DataFrame):
                events = EventArrays.from_frame(events)
            who = events.customer_id
            if len(customer_ids) == 1:
                r = np.where(who == customer_ids[0], 0, -1)
            else:
                r = customer_ids.get_indexer(who)
            o = np.fromiter((prepared.position.get(x, -1) for x in events.offer_id.tolist()), dtype=np.intp,
                            count=len(events))
            t = events.timestamp
            kind = events.event
            mine = (r >= 0) & (o >= 0) & (t <= np.datetime64(as_of, "ns"))
            since = np.datetime64(as_of - pd.Timedelta(days=rules.frequency_days), "ns")
            recent = mine & (kind == "sent") & (t > since)
            sends = np.zeros(m.shape, np.int64)
            np.add.at(sends, (r[recent], o[recent]), 1)
            m &= sends < rules.frequency_cap
            has = ~np.isnan(prepared.max_redemptions)
            if has.any():
                red = mine & (kind == "redeemed")
                used = np.zeros(m.shape, np.int64)
                np.add.at(used, (r[red], o[red]), 1)
                m[:, has] &= used[:, has] < prepared.max_redemptions[None, has]
        return m

    # ----------------------------------------------------------------- ranking

    def score(self, customer_ids, prepared: "PreparedOffers", *, history: pd.DataFrame | None = None):
        """Affinity features and P(redeem) for every (customer, offer): (features, p, cold)."""
        self._check_fitted()
        ids = customer_ids if isinstance(customer_ids, pd.Index) else pd.Index(list(customer_ids))
        snap = self.snapshot_
        rows = snap.customer_map.positions(ids)
        user_vectors = None
        if history is not None and len(history):
            # Customers with purchases after training: features and factors from their own history.
            snap = snapshot(history, history[C.TIMESTAMP].max() + pd.Timedelta(seconds=1), products=self.products_,
                            product_map=snap.product_map, customer_map=IdMap(ids))
            rows = np.arange(len(ids))
            user_vectors = np.vstack([
                self.cf_model_.user_vector(history=history[history[C.CUSTOMER_ID] == c])
                if (history[C.CUSTOMER_ID] == c).any() else np.zeros(self.cf_model_.factors, np.float32)
                for c in ids])
            catalog = prepare_catalog(snap, prepared.catalog.offers, self.products_, self.cf_model_)
        else:
            catalog = prepared.catalog
        feats = affinity_features(snap, catalog, rows, cf_model=self.cf_model_, user_vectors=user_vectors)
        p = self.redemption_model_.predict_pairs(feats)
        return feats, p, rows < 0

    def _check_fitted(self) -> None:
        # sklearn's check_is_fitted costs ~0.1 ms: too much for a one-customer ranking
        if not hasattr(self, "snapshot_"):
            raise NotFittedError("this OfferRanker is not fitted yet; call fit first")

    def _rank_arrays(self, customer_ids, offers, *, as_of=None, channel: str | None = None,
                     k: int = C.DEFAULT_K, events: pd.DataFrame | None = None, exclude=(),
                     history: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidRequestError(f"k must be a positive integer, not {k!r}")
        if channel is not None and channel not in C.CHANNEL_NAMES:
            raise InvalidRequestError(f"unknown channel {channel!r}; use one of {', '.join(C.CHANNEL_NAMES)}")
        self._check_fitted()
        as_of = pd.Timestamp(as_of) if as_of is not None else self.as_of_
        prepared = offers if isinstance(offers, PreparedOffers) else self.prepare(offers)
        ids = pd.Index(list(customer_ids), dtype=object) if len(customer_ids) <= 8 else pd.Index(list(customer_ids))
        if ids.empty or not len(prepared.offer_ids):
            return {c: np.array([]) for c in RANKING_COLUMNS}
        feats, p, cold = self.score(ids, prepared, history=history)
        margin = prepared.value_to_business - prepared.cost
        ev = p * margin[None, :]
        eligible = self.eligibility(ids, prepared, as_of, channel, events, exclude)
        risk = self._risk(ids)
        at_risk = np.nan_to_num(risk, nan=0.0) >= self._rules().at_risk_threshold
        # Ordering key: retention offers first for customers at risk, then expected value. Customers
        # without history are ordered by how many customers buy the offer's products.
        key = np.where(cold[:, None], feats["product_popularity"] * np.maximum(margin, 1e-6)[None, :], ev)
        key = key + np.where(at_risk[:, None] & prepared.retention[None, :], RETENTION_BONUS, 0.0)
        key = np.where(eligible, key, -np.inf)
        reasons = self._reasons(feats, at_risk, prepared.retention)
        cust, rank, pos = [], [], []
        finite = np.isfinite(key)  # eligible, with a score
        order = np.argsort(np.where(finite, -key, np.inf), axis=1, kind="stable")  # best first
        n_ranked = finite.sum(axis=1).tolist()
        for i in range(len(ids)):
            chosen = self._diverse_top(order[i, :n_ranked[i]].tolist(), prepared, k)
            cust += [i] * len(chosen)
            rank += range(1, len(chosen) + 1)
            pos += chosen
        cust, pos = np.asarray(cust, dtype=np.int64), np.asarray(pos, dtype=np.int64)
        return {C.CUSTOMER_ID: ids.to_numpy()[cust], "rank": np.asarray(rank, dtype=np.int64),
                C.OFFER_ID: prepared.offer_ids[pos], "score": ev[cust, pos], "p_redeem": p[cust, pos],
                "expected_value": ev[cust, pos], "reason": REASONS[reasons[cust, pos]], "cold_start": cold[cust]}

    def rank_many(self, customer_ids, offers, **kwargs) -> pd.DataFrame:
        """Top-k eligible offers per customer, one row per (customer, rank): RANKING_COLUMNS.

        ``offers`` is a catalog frame or the result of :meth:`prepare`; ``events`` are offer events
        of these customers (frequency caps, redemption limits); ``history`` holds purchases made
        after training, for customers whose features should come from them.
        """
        return pd.DataFrame(self._rank_arrays(customer_ids, offers, **kwargs), columns=RANKING_COLUMNS)

    def rank(self, customer_id, offers, **kwargs) -> list[dict]:
        """Top-k eligible offers for one customer, best first, as records (keys: RANKING_COLUMNS
        without customer_id). Same keywords as :meth:`rank_many`."""
        a = self._rank_arrays([customer_id], offers, **kwargs)
        keys = [c for c in RANKING_COLUMNS if c != C.CUSTOMER_ID]
        cols = [a[c].tolist() for c in keys]
        return [dict(zip(keys, row)) for row in zip(*cols)]

    def _diverse_top(self, order: list[int], prepared: PreparedOffers, k: int) -> list[int]:
        """Greedy top k of ``order`` (eligible offers, best first) under the department and
        offer-type caps; filled from the skipped offers, best first, when too few offers satisfy
        the caps."""
        dept, blank, types = prepared.department_code, prepared.department_blank, prepared.type_code
        max_dept, max_type = self.max_per_department, self.max_per_type
        per_dept = [0] * prepared.n_departments
        per_type = [0] * prepared.n_types
        full_types = full_depts = 0
        chosen, skipped = [], []
        for j in order:
            d, t = dept[j], types[j]
            if (not blank[j] and per_dept[d] >= max_dept) or per_type[t] >= max_type:
                if len(skipped) < k:
                    skipped.append(j)
                # once no further offer can be chosen, the skipped ones fill the rest
                if len(skipped) >= k - len(chosen) and (
                        full_types == prepared.n_types
                        or (full_depts == prepared.n_departments and not prepared.any_blank_department)):
                    break
                continue
            chosen.append(j)
            if len(chosen) == k:
                break
            per_dept[d] += 1
            per_type[t] += 1
            full_types += per_type[t] == max_type
            full_depts += not blank[j] and per_dept[d] == max_dept
        return chosen + skipped[:k - len(chosen)]

    @staticmethod
    def _reasons(feats: dict, at_risk: np.ndarray, retention: np.ndarray) -> np.ndarray:
        """Per (customer, offer): the code of its reason in REASONS."""
        cf = feats["cf_score"]
        # CF speaks for an offer in the top quarter of the customer's own CF scores.
        if cf.size:
            q = int(0.75 * (cf.shape[1] - 1))
            cf_high = cf > np.partition(cf, q, axis=1)[:, q:q + 1]
        else:
            cf_high = np.zeros(cf.shape, bool)
        reasons = np.zeros(cf.shape, np.int8)  # codes into REASONS: popular right now
        reasons[cf_high & (cf > 0)] = 1
        reasons[feats["hist_count"] >= 2] = 2
        reasons[at_risk[:, None] & retention[None, :]] = 3
        return reasons
