"""P(redeem) for a (customer, offer) pair: learned from past campaigns when there are enough,
a documented heuristic otherwise.

Training examples come from campaigns that ended before the training date: every offer sent is
a row, with features computed as of the send time and label 1 when the customer redeemed it
by the campaign's end. A campaign is a ``campaign_id`` of ``offer_events`` or, without one,
the offers sent on one day.

Past campaigns grow with the customers: ten times The Complete Journey sent 5.4 million offers.
Beyond ``max_examples`` sent offers the examples keep every redemption and a random share of
the offers not redeemed, weighted by the inverse of that share (case-control sampling), so the
fitted P(redeem) stays calibrated while memory and fitting time stay bounded.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from recsys import constants as C
from recsys.data.lines import BasketLines
from recsys.offers.catalog import prepare_catalog
from recsys.offers.features import OFFER_FEATURES, affinity_features, feature_matrix
from recsys.offers.snapshot import basket_lines, snapshot
from recsys.transforms import signed_log

logger = logging.getLogger(__name__)

# Fewer past redemptions than this: use the heuristic. The usual rule for logistic regression,
# about ten events per coefficient: with fewer, the coefficients follow the noise of a few
# campaigns and rank worse than the heuristic (docs/offers.md).
MIN_POSITIVES_PER_FEATURE = 10
MIN_POSITIVES = MIN_POSITIVES_PER_FEATURE * len(OFFER_FEATURES)
MAX_EXAMPLES = C.MAX_REDEMPTION_EXAMPLES
EXAMPLE_COLUMNS = [*OFFER_FEATURES, "redeemed", "weight", "campaign", C.CUSTOMER_ID, C.OFFER_ID]


def past_campaigns(offer_events: pd.DataFrame | None, offers: pd.DataFrame, before) -> pd.DataFrame:
    """Campaigns that ended before ``before``: key, sent_at, ended_at (the day after the median
    end date of the campaign's offers)."""
    before = pd.Timestamp(before)
    cols = ["campaign", "sent_at", "ended_at"]
    if offer_events is None or offer_events.empty:
        return pd.DataFrame(columns=cols)
    sent = offer_events[(offer_events[C.EVENT] == "sent") & (offer_events[C.TIMESTAMP] < before)]
    key = (
        sent[C.CAMPAIGN_ID].astype("string")
        if C.CAMPAIGN_ID in sent and sent[C.CAMPAIGN_ID].notna().all()
        else sent[C.TIMESTAMP].dt.strftime("%Y-%m-%d")
    )
    ends = offers.set_index(C.OFFER_ID)[C.END_DATE]
    g = sent.assign(campaign=key.to_numpy(), _end=sent[C.OFFER_ID].map(ends).to_numpy()).groupby("campaign")
    # The median end date of a campaign's offers: an offer reused by a later campaign stays valid
    # until that campaign ends, which says nothing about when this one did.
    camp = pd.DataFrame(
        {"sent_at": g[C.TIMESTAMP].min(), "ended_at": g["_end"].median().dt.normalize() + pd.Timedelta(days=1)}
    ).reset_index()
    return camp[camp["ended_at"] <= before].sort_values("sent_at").reset_index(drop=True)[cols]


def redemption_examples(
    transactions: pd.DataFrame | None,
    offers: pd.DataFrame,
    offer_events: pd.DataFrame | None,
    before,
    *,
    products: pd.DataFrame | None = None,
    cf_model=None,
    lines: BasketLines | None = None,
    max_examples: int | None = MAX_EXAMPLES,
    random_state: int = C.SEED,
) -> pd.DataFrame:
    """One row per offer sent in a finished past campaign (EXAMPLE_COLUMNS): OFFER_FEATURES,
    ``redeemed``, ``weight`` (the sent offers a row stands for), ``campaign`` and the pair.

    ``lines``: the basket lines of ``transactions`` (which may then be None), else built here.
    ``max_examples``: beyond it, every redemption and a random share of the rest, drawn with
    ``random_state`` (:func:`sample_negatives`); None keeps every sent offer."""
    kept = {"max_examples": max_examples, "random_state": random_state}
    camps = past_campaigns(offer_events, offers, before)
    first_purchase = transactions[C.TIMESTAMP].min() if lines is None else pd.Timestamp(lines.first())
    if len(camps) and lines is None:
        with basket_lines(transactions) as own:  # once for every campaign's snapshot
            return redemption_examples(
                transactions, offers, offer_events, before, products=products, cf_model=cf_model, lines=own, **kept
            )
    if len(camps):
        # The events once, sorted by time with the campaign key beside them: each campaign's cuts
        # are slices of it, not copies of every event (millions at ten times The Complete Journey).
        offer_events = _by_time(offer_events)
    usable = []
    for camp in camps.itertuples(index=False):
        if not camp.sent_at > first_purchase:
            logger.info("campaign %s: sent before any purchase, skipped", camp.campaign)
            continue
        usable.append((camp, _campaign_pairs(offer_events, camp)))
    if not usable:
        return pd.DataFrame(columns=EXAMPLE_COLUMNS)
    # drawn before any feature is computed: the features of dropped offers are never made
    usable = list(zip([c for c, _ in usable], sample_negatives([p for _, p in usable], **kept)))
    # every campaign's features written into one array: no frame per campaign, no concatenation
    # (5.4M sent offers at ten times The Complete Journey)
    features = np.empty((sum(len(p) for _, p in usable), len(OFFER_FEATURES)), np.float32)
    start = 0
    for camp, pairs in usable:
        camp_offers = offers[offers[C.OFFER_ID].isin(pairs[C.OFFER_ID].unique())].reset_index(drop=True)
        recipients = pd.Index(pairs[C.CUSTOMER_ID].unique())
        snap = snapshot(
            transactions,
            camp.sent_at,
            products=products,
            offer_events=_until(offer_events, camp.sent_at),
            product_map=cf_model.product_map_ if cf_model is not None else None,
            lines=lines,
        )
        catalog = prepare_catalog(snap, camp_offers, products, cf_model)
        r = recipients.get_indexer(pairs[C.CUSTOMER_ID])
        o = pd.Index(camp_offers[C.OFFER_ID]).get_indexer(pairs[C.OFFER_ID])
        _pair_features(snap, catalog, recipients, r, o, cf_model, out=features[start : start + len(pairs)])
        start += len(pairs)
        logger.info("campaign %s: %d offers sent, %d redeemed", camp.campaign, len(pairs), int(pairs["redeemed"].sum()))
    sent = pd.concat([p for _, p in usable], ignore_index=True)
    X = pd.DataFrame(features, columns=list(OFFER_FEATURES), copy=False)
    X["redeemed"] = sent["redeemed"].astype("int64").to_numpy()
    X["weight"] = sent["weight"].to_numpy(np.float64)
    X["campaign"] = pd.array(np.repeat([c.campaign for c, _ in usable], [len(p) for _, p in usable]), dtype="str")
    X[C.CUSTOMER_ID] = sent[C.CUSTOMER_ID].to_numpy()
    X[C.OFFER_ID] = sent[C.OFFER_ID].to_numpy()
    return X


def sample_negatives(
    pairs: list[pd.DataFrame], max_examples: int | None, random_state: int = C.SEED
) -> list[pd.DataFrame]:
    """Each campaign's sent pairs with ``weight``, at most ``max_examples`` rows in all.

    Every redeemed pair is kept (weight 1); beyond ``max_examples`` each other pair is kept
    with probability ``rate``, the share that fills ``max_examples`` (at least as many as the
    redemptions when those alone exceed it), and weighs 1/rate: the weighted examples estimate
    the same redemption rate and the same logistic model as all of them. The draws follow the
    campaigns' order and ``random_state``."""
    total = sum(len(p) for p in pairs)
    positives = int(sum((p["redeemed"].to_numpy() > 0).sum() for p in pairs))
    negatives = total - positives
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples must be a positive number of examples or None, not {max_examples!r}")
    if max_examples is None or total <= max_examples or negatives == 0:
        return [p.assign(weight=1.0) for p in pairs]
    rate = max(max_examples - positives, min(negatives, positives)) / negatives
    rng = np.random.default_rng(random_state)
    logger.info("%d offers sent, %d redeemed: %.4f of the others kept as examples", total, positives, rate)
    out = []
    for p in pairs:
        redeemed = p["redeemed"].to_numpy() > 0
        keep = redeemed | (rng.random(len(p)) < rate)
        out.append(p[keep].assign(weight=np.where(redeemed[keep], 1.0, 1.0 / rate)).reset_index(drop=True))
    return out


def _pair_features(snap, catalog, recipients: pd.Index, r, o, cf_model, out: np.ndarray, chunk: int = 2000) -> None:
    """OFFER_FEATURES of the sent pairs (recipient ``r[i]``, offer ``o[i]``) written into ``out``,
    ``chunk`` recipients at a time: the features are dense recipients x offers matrices, which
    for every recipient of a large campaign at once would take gigabytes."""
    all_rows = snap.customer_map.positions(recipients)
    for start in range(0, len(recipients), chunk):
        rows = all_rows[start : start + chunk]
        vectors = None
        if cf_model is not None:
            # Customer factors from purchases before the send time only: the model may have been
            # trained later, and its stored factors would carry the campaign's own purchases.
            vectors = cf_model.user_vectors_from_counts(snap.counts[np.where(rows >= 0, rows, 0)])
            vectors[rows < 0] = 0.0
        feats = affinity_features(snap, catalog, rows, cf_model=cf_model, user_vectors=vectors)
        mine = np.flatnonzero((r >= start) & (r < start + chunk))
        out[mine] = feature_matrix(feats, r[mine] - start, o[mine])


def _by_time(offer_events: pd.DataFrame) -> pd.DataFrame:
    """The events a campaign's examples read, sorted by time, with ``_campaign``: the key
    :func:`past_campaigns` gives campaigns (the campaign id as text; None without campaign ids)."""
    ev = offer_events[[C.CUSTOMER_ID, C.OFFER_ID, C.EVENT, C.TIMESTAMP]].copy()
    by_id = C.CAMPAIGN_ID in offer_events and offer_events[C.CAMPAIGN_ID].notna().all()
    ev["_campaign"] = offer_events[C.CAMPAIGN_ID].astype("string") if by_id else None
    return ev.sort_values(C.TIMESTAMP, kind="stable").reset_index(drop=True)


def _until(events: pd.DataFrame, moment) -> pd.DataFrame:
    """The events (sorted by time) strictly before ``moment``: a slice."""
    return events.iloc[: int(events[C.TIMESTAMP].searchsorted(pd.Timestamp(moment), side="left"))]


def _campaign_pairs(offer_events: pd.DataFrame, camp) -> pd.DataFrame:
    """(customer, offer, redeemed) of every offer the campaign sent, from events before its end."""
    ev = _until(offer_events, camp.ended_at)
    key = ev["_campaign"] if ev["_campaign"].notna().all() else None
    in_camp = (key == camp.campaign) if key is not None else (ev[C.TIMESTAMP].dt.strftime("%Y-%m-%d") == camp.campaign)
    sent = ev[in_camp & (ev[C.EVENT] == "sent")][[C.CUSTOMER_ID, C.OFFER_ID]].drop_duplicates()
    # A redemption counts for the campaign that sent the offer (by campaign id, or any time by the end).
    red_ev = ev[(ev[C.EVENT] == "redeemed") & (ev[C.TIMESTAMP] >= camp.sent_at)]
    if key is not None:
        red_ev = red_ev[in_camp[red_ev.index]]
    redeemed = red_ev[[C.CUSTOMER_ID, C.OFFER_ID]].drop_duplicates().assign(redeemed=1)
    return sent.merge(redeemed, on=[C.CUSTOMER_ID, C.OFFER_ID], how="left").fillna({"redeemed": 0})


def heuristic_p_redeem(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Without redemption history: a logistic score of own spend on the offer's products and
    the collaborative-filtering score, with a 2% base rate.

    logit = -3.9 + 1.2 log1p(hist_spend) + 0.5 cf_score

    Spend leads; the CF score mostly orders the offers a customer has never bought, which are
    most of a catalog. Category purchases are left out: on both development campaigns every
    weight on them ranked the redeemed coupons lower (docs/offers.md).
    """
    X = pd.DataFrame(X, columns=list(OFFER_FEATURES)) if not isinstance(X, pd.DataFrame) else X
    z = -3.9 + 1.2 * np.log1p(X["hist_spend"].to_numpy()) + 0.5 * X["cf_score"].to_numpy()
    return 1.0 / (1.0 + np.exp(-z))


class RedemptionModel(BaseEstimator):
    """Logistic regression on log features (default) or gradient boosting on OFFER_FEATURES;
    falls back to :func:`heuristic_p_redeem` when the examples hold fewer than
    ``min_positives`` redemptions.

    Parameters: ``kind`` (``logistic`` or ``gbm``), the gradient-boosting ``max_leaf_nodes``,
    ``learning_rate`` and ``max_iter``, ``min_positives``, ``random_state``.

    Fitted: ``learned_`` (False: the heuristic is in use), ``model_`` (None with the
    heuristic), ``n_examples_``, ``n_positives_``, ``negative_rate_`` (the share of unredeemed
    sent offers among the examples: below 1 when they were sampled, and weighted).
    """

    def __init__(
        self,
        kind: str = "logistic",
        max_leaf_nodes: int = 15,
        learning_rate: float = 0.05,
        max_iter: int = 300,
        min_positives: int = MIN_POSITIVES,
        random_state: int = C.SEED,
    ):
        self.kind = kind
        self.max_leaf_nodes = max_leaf_nodes
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.min_positives = min_positives
        self.random_state = random_state

    def fit(self, examples: pd.DataFrame, y=None) -> RedemptionModel:
        """``examples``: OFFER_FEATURES and ``redeemed``, with ``weight`` per row when sampled
        (:func:`redemption_examples`)."""
        y = examples["redeemed"].to_numpy() if y is None else np.asarray(y)
        weight = examples["weight"].to_numpy(np.float64) if "weight" in examples else None
        self.n_examples_ = len(y)
        self.n_positives_ = int(np.sum(y))
        # the share of the offers not redeemed that the examples kept (1: all of them)
        self.negative_rate_ = float(1.0 / weight[y == 0].max()) if weight is not None and (y == 0).any() else 1.0
        self.learned_ = self.n_positives_ >= self.min_positives and self.n_positives_ < self.n_examples_
        if self.kind not in ("logistic", "gbm"):
            raise ValueError(f"kind must be 'logistic' or 'gbm', not {self.kind!r}")
        if self.learned_ and self.kind == "logistic":
            # the scaler works in place on signed_log's new array: one copy of the examples fewer
            self.model_ = make_pipeline(
                FunctionTransformer(signed_log), StandardScaler(copy=False), LogisticRegression(C=1.0, max_iter=2000)
            )
            self.model_.fit(examples[list(OFFER_FEATURES)], y, logisticregression__sample_weight=weight)
        elif self.learned_:
            self.model_ = HistGradientBoostingClassifier(
                max_leaf_nodes=self.max_leaf_nodes,
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                min_samples_leaf=40,
                l2_regularization=1.0,
                early_stopping=True,
                validation_fraction=0.15,
                n_iter_no_change=30,
                random_state=self.random_state,
            )
            self.model_.fit(examples[list(OFFER_FEATURES)], y, sample_weight=weight)
        else:
            logger.info(
                "%d past redemptions (< %d): P(redeem) from the heuristic", self.n_positives_, self.min_positives
            )
            self.model_ = None
        return self

    def predict_proba(self, X) -> np.ndarray:
        """P(redeem) per row of an OFFER_FEATURES matrix or frame."""
        if not hasattr(self, "learned_"):
            raise NotFittedError("this RedemptionModel is not fitted yet; call fit first")
        if not self.learned_:
            return heuristic_p_redeem(X)
        if self.kind == "logistic":
            # The fitted pipeline in plain numpy: the same numbers, without per-call overhead
            # (ranking one customer must take about a millisecond).
            A = (
                X[list(OFFER_FEATURES)].to_numpy(np.float64)
                if isinstance(X, pd.DataFrame)
                else np.asarray(X, np.float64)
            )
            scaler, lr = self.model_[1], self.model_[2]
            z = ((signed_log(A) - scaler.mean_) / scaler.scale_) @ lr.coef_.ravel() + lr.intercept_[0]
            return 1.0 / (1.0 + np.exp(-z))
        X = X[list(OFFER_FEATURES)] if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=list(OFFER_FEATURES))
        return self.model_.predict_proba(X)[:, 1]

    def predict_pairs(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """P(redeem) for every (customer, offer) of ``affinity_features``' matrices, as a
        customers x offers array: ``predict_proba(feature_matrix(features))``, reshaped.

        The logistic model is summed feature by feature without stacking the pairs: a feature
        that is the same for every customer (or every offer) is transformed once per offer (or
        per customer) and broadcast. Ranking a batch of customers spends most of its time here.
        """
        if not hasattr(self, "learned_"):
            raise NotFittedError("this RedemptionModel is not fitted yet; call fit first")
        shape = np.broadcast_shapes(*(np.shape(features[n]) for n in OFFER_FEATURES))
        if not (self.learned_ and self.kind == "logistic"):
            return self.predict_proba(feature_matrix(features)).reshape(shape)
        scaler, lr = self.model_[1], self.model_[2]
        w = lr.coef_.ravel() / scaler.scale_
        z = np.full(shape, lr.intercept_[0] - float(w @ scaler.mean_))
        for j, name in enumerate(OFFER_FEATURES):
            z += w[j] * signed_log(_compact(features[name]))
        return 1.0 / (1.0 + np.exp(-z))


def _compact(a: np.ndarray) -> np.ndarray:
    """The smallest array that broadcasts to ``a``: one row or column of a broadcast view."""
    a = np.asarray(a)
    if a.ndim == 2 and a.strides[0] == 0:
        a = a[:1]
    if a.ndim == 2 and a.strides[1] == 0:
        a = a[:, :1]
    return a
