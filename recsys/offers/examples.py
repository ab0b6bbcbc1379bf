"""The redemption model's training examples: every offer sent in a finished past campaign.

Each offer sent is a row, with features computed as of the send time and label 1 when the
customer redeemed it by the campaign's end. A campaign is a ``campaign_id`` of
``offer_events`` or, without one, the offers sent on one day.

Past campaigns grow with the customers: ten times The Complete Journey sent 5.4 million offers.
Beyond ``max_examples`` sent offers the examples keep every redemption and a random share of
the offers not redeemed, weighted by the inverse of that share (case-control sampling), so the
fitted P(redeem) stays calibrated while memory and fitting time stay bounded.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.data.lines import BasketLines
from recsys.offers.catalog import prepare_catalog
from recsys.offers.features import OFFER_FEATURES, affinity_features, feature_matrix
from recsys.offers.snapshot import basket_lines, snapshot

logger = logging.getLogger(__name__)

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
    features = _campaign_features(usable, transactions, offers, offer_events, products, cf_model, lines)
    sent = pd.concat([p for _, p in usable], ignore_index=True)
    X = pd.DataFrame(features, columns=list(OFFER_FEATURES), copy=False)
    X["redeemed"] = sent["redeemed"].astype("int64").to_numpy()
    X["weight"] = sent["weight"].to_numpy(np.float64)
    X["campaign"] = pd.array(np.repeat([c.campaign for c, _ in usable], [len(p) for _, p in usable]), dtype="str")
    X[C.CUSTOMER_ID] = sent[C.CUSTOMER_ID].to_numpy()
    X[C.OFFER_ID] = sent[C.OFFER_ID].to_numpy()
    return X


def _campaign_features(usable, transactions, offers, offer_events, products, cf_model, lines) -> np.ndarray:
    """OFFER_FEATURES of every (campaign, its sent pairs) of ``usable``, as of each campaign's
    send time, written into one array: no frame per campaign, no concatenation (5.4M sent offers
    at ten times The Complete Journey)."""
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
            customers=recipients,  # their rows alone are read
        )
        catalog = prepare_catalog(snap, camp_offers, products, cf_model)
        r = recipients.get_indexer(pairs[C.CUSTOMER_ID])
        o = pd.Index(camp_offers[C.OFFER_ID]).get_indexer(pairs[C.OFFER_ID])
        _pair_features(snap, catalog, recipients, r, o, cf_model, out=features[start : start + len(pairs)])
        start += len(pairs)
        logger.info("campaign %s: %d offers sent, %d redeemed", camp.campaign, len(pairs), int(pairs["redeemed"].sum()))
    return features


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
    :func:`past_campaigns` gives campaigns (the campaign id as text; None without campaign ids).
    The event and the key are categories: every campaign compares its key and every snapshot
    counts the events per offer and kind, over all events before it (56 million at a hundred
    times The Complete Journey), which codes make about twice as fast as text."""
    ev = offer_events[[C.CUSTOMER_ID, C.OFFER_ID, C.EVENT, C.TIMESTAMP]].copy()
    ev[C.EVENT] = ev[C.EVENT].astype("category")
    by_id = C.CAMPAIGN_ID in offer_events and offer_events[C.CAMPAIGN_ID].notna().all()
    ev["_campaign"] = offer_events[C.CAMPAIGN_ID].astype("string").astype("category") if by_id else None
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
