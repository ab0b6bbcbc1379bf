"""The offer-ranking engine: which eligible offers to send a customer, in what order and why.

``OfferRanker.fit`` learns from the past (collaborative filtering, the customer snapshot, the
redemption model); ``rank_many`` scores today's catalog for many customers at once:

1. affinity features per (customer, offer) (recsys.offers.features) and P(redeem)
   (recsys.offers.redemption);
2. eligibility (recsys.offers.eligibility);
3. objective: expected value = P(redeem) x (value to the business - cost)
   (recsys.offers.economics);
4. order: by ``tier`` (retention offers first for customers at risk), then by ``score``;
5. diversity: at most ``max_per_department`` offers of one department and ``max_per_type`` of
   one offer type in the top k, unless too few offers remain to fill it
   (recsys.offers.diversity);
6. a reason in plain words (recsys.offers.reasons).

Every answer sorts by ``tier`` ascending, then ``score`` descending: that is ``rank``.
docs/offers.md documents every rule and default.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from recsys import constants as C
from recsys.cf import ALSRecommender, IdMap
from recsys.customers import default_as_of
from recsys.data.lines import BasketLines
from recsys.data.windows import before
from recsys.errors import InvalidRequestError
from recsys.offers.eligibility import EligibilityRules, EventArrays, eligibility
from recsys.offers.examples import MAX_EXAMPLES, redemption_examples
from recsys.offers.features import affinity_features
from recsys.offers.ordering import choose, held_columns
from recsys.offers.orders import kept_ordered, ordered
from recsys.offers.prepared import PreparedOffers, prepare_offers
from recsys.offers.redemption import RedemptionModel
from recsys.offers.scores import ScoreTable, rows_scores
from recsys.offers.snapshot import basket_lines, snapshot

logger = logging.getLogger(__name__)

RANKING_COLUMNS = list(C.RANKED_OFFER_COLUMNS)


class OfferRanker(BaseEstimator):
    """Fitted on a dataset as of a date; ranks any catalog of offers afterwards.

    Parameters: ``als_params`` (for the ALS model fitted when none is given), ``redemption_kind``
    (``logistic`` or ``gbm``), ``max_per_department`` and ``max_per_type`` (the diversity caps),
    ``rules`` (:class:`EligibilityRules`), ``max_examples`` (past sent offers the redemption
    model learns from, beyond which those not redeemed are sampled and weighted; None: all),
    ``random_state``.

    Fitted: ``as_of_``, ``cf_model_`` (ALS), ``snapshot_`` (customer x product state at
    ``as_of_``), ``redemption_model_``, ``training_examples_``, ``price_`` (mean price per
    product), ``churn_`` and ``segments_`` (per customer), ``products_``.
    """

    def __init__(
        self,
        als_params: dict | None = None,
        redemption_kind: str = "logistic",
        max_per_department: int = 3,
        max_per_type: int = 4,
        rules: EligibilityRules | None = None,
        max_examples: int | None = MAX_EXAMPLES,
        random_state: int = C.SEED,
    ):
        self.als_params = als_params
        self.redemption_kind = redemption_kind
        self.max_per_department = max_per_department
        self.max_per_type = max_per_type
        self.rules = rules
        self.max_examples = max_examples
        self.random_state = random_state

    def fit(
        self,
        ds,
        as_of=None,
        *,
        cf_model: ALSRecommender | None = None,
        churn: pd.Series | None = None,
        segments: pd.Series | None = None,
        lines: BasketLines | None = None,
    ) -> OfferRanker:
        """``churn``: churn probability per customer_id; ``segments``: segment name per customer_id;
        ``lines``: ``ds.transactions``' basket lines if held (the transactions are then not read)."""
        if lines is None:
            as_of = pd.Timestamp(as_of) if as_of is not None else default_as_of(ds.transactions)
            with basket_lines(ds.transactions) as own:
                return self.fit(ds, as_of, cf_model=cf_model, churn=churn, segments=segments, lines=own)
        if as_of is None:
            raise ValueError("as_of is needed with lines: the transactions' last day is not read")
        as_of, lines = pd.Timestamp(as_of), lines.before(as_of)
        events = before(ds.offer_events, as_of)
        self.as_of_, self.products_ = as_of, ds.products
        als = ALSRecommender(**(self.als_params or {}), random_state=self.random_state)
        self.cf_model_ = cf_model if cf_model is not None else als.fit(lines)
        known = {"products": ds.products, "lines": lines}
        self.snapshot_ = snapshot(None, as_of, offer_events=events, product_map=self.cf_model_.product_map_, **known)
        examples = (
            pd.DataFrame(columns=["redeemed"])
            if ds.offers is None
            else redemption_examples(
                None, ds.offers, events, as_of, cf_model=self.cf_model_, **known, **self._sampling()
            )
        )
        self.price_ = lines.prices(as_of).reindex(self.snapshot_.product_map.ids).to_numpy(np.float64)
        lines.release()  # DuckDB's cache is not held while the redemption model fits
        self.redemption_model_ = RedemptionModel(kind=self.redemption_kind, random_state=self.random_state).fit(
            examples
        )
        self.training_examples_ = len(examples)
        self.churn_ = churn.astype("float64") if churn is not None else pd.Series(dtype="float64")
        self.segments_ = segments.astype(object) if segments is not None else pd.Series(dtype=object)
        return self

    def _sampling(self) -> dict:
        # a bundle pickled before max_examples existed keeps every example when refitted
        return {"max_examples": getattr(self, "max_examples", None), "random_state": self.random_state}

    def _risk(self, ids: pd.Index) -> np.ndarray:
        if len(ids) <= 8:
            return np.array([self.churn_.get(c, np.nan) for c in ids], dtype=np.float64)
        return self.churn_.reindex(ids).to_numpy(np.float64)

    def _segment(self, ids: pd.Index) -> np.ndarray:
        if len(ids) <= 8:
            return np.array([self.segments_.get(c, None) for c in ids], dtype=object)
        return self.segments_.reindex(ids).to_numpy(dtype=object)

    def eligibility_rules(self) -> EligibilityRules:
        return self.rules or EligibilityRules()

    def at_risk(self, ids: pd.Index) -> np.ndarray:
        """Per customer: at risk enough that retention offers lead (an unknown risk is not)."""
        return np.nan_to_num(self._risk(ids), nan=0.0) >= self.eligibility_rules().at_risk_threshold

    def _check_fitted(self) -> None:
        # sklearn's check_is_fitted costs ~0.1 ms: too much for a one-customer ranking
        if not hasattr(self, "snapshot_"):
            raise NotFittedError("this OfferRanker is not fitted yet; call fit first")

    def prepare(self, offers: pd.DataFrame, keep_scores: bool = False) -> PreparedOffers:
        """Per-offer work done once per catalog (targets, economics, departments); pass the result
        to :meth:`rank_many` instead of the frame when ranking many requests.

        ``keep_scores``: compute each known customer's scores for this catalog once, a block of
        customers at a time on first use, and keep them (recsys.offers.scores): for a service
        ranking one customer per request.
        """
        self._check_fitted()
        prepared = prepare_offers(self.snapshot_, offers, self.products_, self.cf_model_, self.price_)
        if keep_scores:
            prepared.scores = ScoreTable(
                len(self.snapshot_.customer_map),
                len(prepared.offer_ids),
                lambda rows: rows_scores(self, rows, prepared.catalog, prepared.retention),
            )
        return prepared

    def eligibility(
        self,
        customer_ids: pd.Index,
        prepared: PreparedOffers,
        as_of: pd.Timestamp,
        channel: str | None,
        events: pd.DataFrame | EventArrays | None,
        exclude=(),
        decided_at: pd.Timestamp | None = None,
    ) -> np.ndarray:
        """Boolean customers x offers matrix of what may be sent (recsys.offers.eligibility)."""
        return eligibility(
            customer_ids,
            prepared,
            as_of,
            channel,
            events,
            exclude,
            risk_of=self._risk,
            segment_of=self._segment,
            rules=self.eligibility_rules(),
            decided_at=decided_at,
        )

    def score(self, customer_ids, prepared: PreparedOffers, *, history: pd.DataFrame | None = None):
        """Affinity features and P(redeem) for every (customer, offer): (features, p, cold)."""
        self._check_fitted()
        ids = customer_ids if isinstance(customer_ids, pd.Index) else pd.Index(list(customer_ids))
        snap = self.snapshot_
        rows = snap.customer_map.positions(ids)
        user_vectors = None
        if history is not None and len(history):
            # Customers with purchases after training: features and factors from their own history.
            snap = snapshot(
                history,
                history[C.TIMESTAMP].max() + pd.Timedelta(seconds=1),
                products=self.products_,
                product_map=snap.product_map,
                customer_map=IdMap(ids),
            )
            rows = np.arange(len(ids))
            user_vectors = np.vstack(
                [
                    self.cf_model_.user_vector(history=history[history[C.CUSTOMER_ID] == c])
                    if (history[C.CUSTOMER_ID] == c).any()
                    else np.zeros(self.cf_model_.factors, np.float32)
                    for c in ids
                ]
            )
        # The catalog stays the one prepared against the model's snapshot (the history's has the
        # same products and categories): the offers' popularity and redemption rate are over
        # every customer and event, not over this history.
        feats = affinity_features(snap, prepared.catalog, rows, cf_model=self.cf_model_, user_vectors=user_vectors)
        p = self.redemption_model_.predict_pairs(feats)
        return feats, p, rows < 0

    def _check_request(self, k, channel) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidRequestError(f"k must be a positive integer, not {k!r}")
        if channel is not None and channel not in C.CHANNEL_NAMES:
            raise InvalidRequestError(f"unknown channel {channel!r}; use one of {', '.join(C.CHANNEL_NAMES)}")

    def rank_arrays(self, customer_ids, offers, **kwargs) -> dict[str, np.ndarray]:
        """:meth:`rank_many` as a dict of column arrays (RANKING_COLUMNS)."""
        return self.decide(customer_ids, offers, **kwargs)[0]

    def decide(
        self,
        customer_ids,
        offers,
        *,
        as_of=None,
        channel: str | None = None,
        k: int = C.DEFAULT_K,
        events: pd.DataFrame | EventArrays | None = None,
        exclude=(),
        history: pd.DataFrame | None = None,
        control=None,
        decided_at=None,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The ranking (RANKING_COLUMNS, as column arrays) and the offers held back as control
        (``customer_id``, ``offer_id``, ``propensity``: the probability of being held back).

        ``control`` (recsys.incrementality.ControlGroups) keeps customers back from offers they
        would get: only offers in a customer's top k are drawn, so both arms hold customers the
        offer was eligible for and chosen for. Without it nothing is held back.
        """
        self._check_request(k, channel)
        self._check_fitted()
        as_of = pd.Timestamp(as_of) if as_of is not None else self.as_of_
        prepared = offers if isinstance(offers, PreparedOffers) else self.prepare(offers)
        values = list(customer_ids)
        if not values or not len(prepared.offer_ids):
            return {c: np.array([]) for c in RANKING_COLUMNS}, held_columns([], [], [], prepared)
        # a request's few ids are not worth an index; many are looked up through one
        ids = None if len(values) <= 8 else pd.Index(values)
        decided = None if decided_at is None else max(pd.Timestamp(decided_at), as_of)
        found = None
        if not len(exclude) and (history is None or not len(history)):
            found = kept_ordered(self, values if ids is None else ids, prepared, as_of, channel, events, decided)
        if found is None:
            ids = pd.Index(values, dtype=object) if ids is None else ids
            found = ordered(self, ids, prepared, as_of, channel, events, exclude, history, decided)
        id_values = np.array(values, dtype=object) if len(values) <= 8 else ids.to_numpy()
        caps = (self.max_per_department, self.max_per_type)
        return choose(id_values, found.orders, found.scored, prepared, k, caps, control)

    def rank_many(self, customer_ids, offers, **kwargs) -> pd.DataFrame:
        """Top-k eligible offers per customer, one row per (customer, rank): RANKING_COLUMNS.

        ``offers`` is a catalog frame or the result of :meth:`prepare`; ``events`` are offer events
        of these customers (frequency caps, redemption limits); ``history`` holds purchases made
        after training, for customers whose features should come from them.
        """
        return pd.DataFrame(self.rank_arrays(customer_ids, offers, **kwargs), columns=RANKING_COLUMNS)

    def rank(self, customer_id, offers, **kwargs) -> list[dict]:
        """Top-k eligible offers for one customer, best first, as records (keys: RANKING_COLUMNS
        without customer_id). Same keywords as :meth:`rank_many`."""
        a = self.rank_arrays([customer_id], offers, **kwargs)
        keys = [c for c in RANKING_COLUMNS if c != C.CUSTOMER_ID]
        cols = [a[c].tolist() for c in keys]
        return [dict(zip(keys, row)) for row in zip(*cols)]
