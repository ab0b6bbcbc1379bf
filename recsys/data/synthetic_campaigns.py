"""The synthetic generator's offers and campaigns: a catalog per campaign, and sent, viewed and
redeemed events whose redemptions follow a planted customer x offer affinity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys import constants as C


def offer_name(offer_type: str, value: float, target: str) -> str:
    """A name marketing would write: "15% off cheese", "2x points on bread"."""
    return {
        "percent_off": f"{value:g}% off {target}",
        "amount_off": f"${value:.2f} off {target}",
        "bogo": f"Buy one, get one free: {target}",
        "points_multiplier": f"{value:g}x points on {target}",
        "gift": f"Free gift with {target}",
        "free_shipping": f"Free delivery with {target}",
        "free_trial": f"Free trial: {target}",
    }[offer_type]


def offers_and_events(cfg, rng, start, cats, prod_cat, prod_ids, popularity, pref, signup, end_day, cust_ids):
    """The offer catalog of every campaign, then the campaigns' events with planted affinity."""
    offers, off_cat, off_campaign, campaign_start, offer_ids, duration = _offer_catalog(
        cfg, rng, start, cats, prod_cat, prod_ids, popularity
    )
    events, affinity_truth = _campaign_events(
        cfg, rng, start, pref, signup, end_day, cust_ids, off_cat, off_campaign, campaign_start, offer_ids, duration
    )
    return offers, events, affinity_truth


def _offer_catalog(cfg, rng, start, cats, prod_cat, prod_ids, popularity) -> tuple:
    """Offers of every campaign: a category each, half of them naming its five most popular products."""
    n_cat = len(cats)
    n_off = cfg.campaigns * cfg.offers_per_campaign
    campaign_start = np.linspace(0.25, 0.85, cfg.campaigns) * cfg.days
    off_campaign = np.repeat(np.arange(cfg.campaigns), cfg.offers_per_campaign)
    off_cat = rng.permutation(np.resize(np.arange(n_cat), n_off))
    types = np.array([t for t in C.OFFER_TYPES if t not in ("free_shipping", "free_trial")])
    off_type = rng.choice(types, n_off)
    value = np.where(
        off_type == "percent_off",
        rng.choice([10.0, 15.0, 20.0, 25.0], n_off),
        np.where(
            off_type == "points_multiplier", rng.choice([2.0, 3.0], n_off), rng.choice([0.5, 1.0, 2.0, 3.0], n_off)
        ),
    )
    by_products = rng.random(n_off) < 0.5
    product_lists, categories = [], []
    for i in range(n_off):
        members = np.flatnonzero(prod_cat == off_cat[i])
        if by_products[i]:
            top = members[np.argsort(-popularity[members], kind="stable")[:5]]
            product_lists.append([int(p) for p in prod_ids[np.sort(top)]])
            categories.append(None)
        else:
            product_lists.append(None)
            categories.append(cats[off_cat[i]][1])
    duration = 28
    off_start = campaign_start[off_campaign]
    offer_ids = np.array([f"OF{i:04d}" for i in range(1, n_off + 1)], dtype=object)
    channels = [
        None if rng.random() < 0.5 else sorted(rng.choice(list(C.CHANNEL_NAMES), 2, replace=False).tolist())
        for _ in range(n_off)
    ]
    offers = pd.DataFrame(
        {
            C.OFFER_ID: offer_ids,
            C.NAME: [offer_name(off_type[i], value[i], cats[off_cat[i]][1]) for i in range(n_off)],
            C.OFFER_TYPE: off_type,
            C.VALUE: value,
            C.PRODUCT_IDS: pd.Series(product_lists, dtype=object),
            C.CATEGORY: pd.Series(categories, dtype="string"),
            C.START_DATE: (start + pd.to_timedelta(np.floor(off_start), unit="D")).astype("datetime64[ns]"),
            C.END_DATE: (start + pd.to_timedelta(np.floor(off_start) + duration, unit="D")).astype("datetime64[ns]"),
            C.CHANNELS: pd.Series(channels, dtype=object),
            C.COST: np.round(np.where(off_type == "percent_off", value / 100 * 8.0, value * 0.6), 2),
            "campaign": off_campaign.astype("int64") + 1,
        }
    )

    return offers, off_cat, off_campaign, campaign_start, offer_ids, duration


def _campaign_events(
    cfg, rng, start, pref, signup, end_day, cust_ids, off_cat, off_campaign, campaign_start, offer_ids, duration
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sent, viewed and redeemed events; redemption follows the planted affinity."""
    n_off = len(offer_ids)
    # Planted affinity: the customer's preference for the offer's category.
    affinity = pref[:, off_cat]  # customers x offers
    logit = -4.0 + 12.0 * affinity
    p_redeem = 1.0 / (1.0 + np.exp(-logit))
    rows = []
    for k in range(cfg.campaigns):
        day0 = campaign_start[k]
        eligible = np.flatnonzero(signup < day0)
        recipients = eligible[rng.random(len(eligible)) < cfg.send_share]
        offs = np.flatnonzero(off_campaign == k)
        cc, oo = np.meshgrid(recipients, offs, indexing="ij")
        cc, oo = cc.ravel(), oo.ravel()
        alive = end_day[cc] > day0 + 3
        redeemed = alive & (rng.random(len(cc)) < p_redeem[cc, oo])
        viewed = redeemed | (rng.random(len(cc)) < 0.4)
        t_sent = np.full(len(cc), np.floor(day0) + 9 / 24)
        t_view = t_sent + rng.uniform(0.05, 2.0, len(cc))
        t_redeem = t_view + rng.uniform(0.1, 20.0, len(cc))
        t_redeem = np.minimum(t_redeem, np.minimum(end_day[cc], np.floor(day0) + duration))
        for mask, name, t in (
            (np.ones(len(cc), bool), "sent", t_sent),
            (viewed, "viewed", t_view),
            (redeemed, "redeemed", t_redeem),
        ):
            rows.append(pd.DataFrame({"c": cc[mask], "o": oo[mask], C.EVENT: name, "t": t[mask], C.CAMPAIGN_ID: k + 1}))
    ev = pd.concat(rows, ignore_index=True).sort_values(["t", "c", "o"], kind="stable").reset_index(drop=True)
    events = pd.DataFrame(
        {
            C.EVENT_ID: [f"E{i:08d}" for i in range(1, len(ev) + 1)],
            C.CUSTOMER_ID: cust_ids[ev["c"].to_numpy()],
            C.OFFER_ID: offer_ids[ev["o"].to_numpy()],
            C.EVENT: ev[C.EVENT].to_numpy(),
            C.TIMESTAMP: (start + pd.to_timedelta(np.floor(ev["t"].to_numpy() * 86_400), unit="s")).astype(
                "datetime64[ns]"
            ),
            C.CAMPAIGN_ID: ev[C.CAMPAIGN_ID].astype("int64").to_numpy(),
        }
    )
    cc, oo = np.meshgrid(np.arange(len(cust_ids)), np.arange(n_off), indexing="ij")
    affinity_truth = pd.DataFrame(
        {
            C.CUSTOMER_ID: cust_ids[cc.ravel()],
            C.OFFER_ID: offer_ids[oo.ravel()],
            "affinity": affinity.ravel(),
            "p_redeem": p_redeem.ravel(),
        }
    )
    return events, affinity_truth
