"""Deterministic synthetic retail data with planted structure and its ground truth.

What is planted, so that tests can check that models recover it:
- segments: each customer belongs to one of four segments; a segment prefers one
  department strongly and has its own shopping frequency and basket size;
- churn: a share of customers stop buying at a known date (and buy less often before it);
- offers: campaigns send offers to customers; the chance of redeeming grows with the
  customer's planted preference for the offer's category.

Ids come in both kinds the contract allows: customers, offers and events have string ids,
products integer ids. The same seed gives the same data, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import constants as C

DEPARTMENTS = {
    "PRODUCE": ("fruit", "vegetables", "salad"),
    "DAIRY": ("milk", "cheese", "yogurt"),
    "BAKERY": ("bread", "pastry", "cakes"),
    "PANTRY": ("pasta", "snacks", "beverages"),
}
SEGMENT_NAMES = ("fresh_produce_lovers", "dairy_regulars", "bakery_fans", "pantry_stockers")
# Per segment: preferred department (index), baskets per week, extra items per basket.
SEGMENT_DEPARTMENT = (0, 1, 2, 3)
SEGMENT_RATE = (1.8, 1.2, 0.8, 0.45)
SEGMENT_ITEMS = (1.0, 1.5, 2.0, 3.0)

TRUTH_DIR = "_truth"


@dataclass(frozen=True)
class SynthConfig:
    customers: int = 1000
    products: int = 500
    seed: int = C.SEED
    start: str = "2024-01-01"
    days: int = 365
    churn_share: float = 0.3
    new_customer_share: float = 0.15
    campaigns: int = 5
    offers_per_campaign: int = 12
    send_share: float = 0.5
    preference_strength: float = 6.0  # how concentrated customers are on their segment's department


def _customer_ids(n: int) -> np.ndarray:
    return np.array([f"C{i:06d}" for i in range(1, n + 1)], dtype=object)


def generate(config: SynthConfig | None = None, **overrides) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Return ``(tables, truth)``: the contract's tables and the planted ground truth."""
    cfg = config or SynthConfig()
    if overrides:
        cfg = SynthConfig(**{**cfg.__dict__, **overrides})
    if cfg.customers < 1 or cfg.products < 12:
        raise ValueError("need at least 1 customer and 12 products (one per category)")
    rng = np.random.default_rng(cfg.seed)
    start = pd.Timestamp(cfg.start)
    day_s = 86_400.0

    # Products: categories of departments, log-normal prices, Zipf popularity within category.
    cats = [(d, c) for d, cs in DEPARTMENTS.items() for c in cs]
    n_cat = len(cats)
    prod_cat = np.arange(cfg.products) % n_cat
    prod_ids = np.arange(100_001, 100_001 + cfg.products, dtype="int64")
    price = np.round(np.exp(rng.normal(1.0, 0.5, cfg.products)), 2) + 0.29
    popularity = 1.0 / (1.0 + np.arange(cfg.products) // n_cat) ** 1.1
    products = pd.DataFrame(
        {
            C.PRODUCT_ID: prod_ids,
            C.CATEGORY: [cats[k][1] for k in prod_cat],
            C.DEPARTMENT: [cats[k][0] for k in prod_cat],
            C.BRAND: rng.choice(["House", "National", "Premium"], cfg.products),
            C.NAME: [f"{cats[k][1]} item {i}" for i, k in enumerate(prod_cat)],
        }
    )

    # Customers: segment, preferences, sign-up, churn.
    n = cfg.customers
    seg = rng.integers(0, len(SEGMENT_NAMES), n)
    dept_of_cat = np.array([list(DEPARTMENTS).index(d) for d, _ in cats])
    alpha = 0.3 + cfg.preference_strength * (dept_of_cat[None, :] == np.array(SEGMENT_DEPARTMENT)[seg][:, None])
    pref = rng.gamma(alpha)
    pref /= pref.sum(axis=1, keepdims=True)
    is_new = rng.random(n) < cfg.new_customer_share
    signup = np.where(is_new, rng.uniform(0.7, 0.9, n), rng.uniform(0.0, 0.3, n)) * cfg.days
    churned = (~is_new) & (rng.random(n) < cfg.churn_share)
    churn_day = np.where(churned, rng.uniform(np.minimum(signup + 60, cfg.days - 45), cfg.days - 45), np.nan)
    end_day = np.where(churned, churn_day, cfg.days)
    rate = np.array(SEGMENT_RATE)[seg] * rng.lognormal(0.0, 0.3, n) / 7.0  # baskets per day

    # Baskets: a Poisson process over each customer's active span; churners fade out.
    n_baskets = rng.poisson(rate * (end_day - signup)) + 1
    b_cust = np.repeat(np.arange(n), n_baskets)
    u = rng.random(len(b_cust))
    u = np.where(churned[b_cust], u**1.3, u)
    b_time = signup[b_cust] + u * (end_day - signup)[b_cust]
    b_items = 1 + rng.poisson(np.array(SEGMENT_ITEMS)[seg][b_cust])

    # Lines: category from the customer's preference, product by popularity within it.
    l_basket = np.repeat(np.arange(len(b_cust)), b_items)
    l_cust = b_cust[l_basket]
    cum = np.cumsum(pref, axis=1)
    l_cat = np.minimum((rng.random(len(l_cust))[:, None] > cum[l_cust]).sum(axis=1), n_cat - 1)
    l_prod = np.empty(len(l_cust), dtype=np.int64)
    r = rng.random(len(l_cust))
    for k in range(n_cat):
        members = np.flatnonzero(prod_cat == k)
        cdf = np.cumsum(popularity[members])
        cdf /= cdf[-1]
        mask = l_cat == k
        l_prod[mask] = members[np.minimum(np.searchsorted(cdf, r[mask]), len(members) - 1)]
    qty = 1 + rng.poisson(0.3, len(l_cust))
    qty = np.where(rng.random(len(l_cust)) < 0.005, -1, qty)  # a few returns
    amount = np.round(price[l_prod] * qty, 2)
    on_promo = rng.random(len(l_cust)) < 0.15
    discount = np.where(on_promo & (qty > 0), np.round(amount * rng.uniform(0.1, 0.3, len(l_cust)), 2), 0.0)
    seconds = np.floor(b_time * day_s)[l_basket]

    cust_ids = _customer_ids(n)
    transactions = (
        pd.DataFrame(
            {
                C.CUSTOMER_ID: cust_ids[l_cust],
                C.PRODUCT_ID: prod_ids[l_prod],
                C.TIMESTAMP: start + pd.to_timedelta(seconds, unit="s"),
                C.QUANTITY: qty.astype("int64"),
                C.AMOUNT: amount,
                C.BASKET_ID: (l_basket + 1).astype("int64"),
                C.STORE_ID: (1 + l_cust % 7).astype("int64"),
                C.DISCOUNT: discount,
            }
        )
        .sort_values([C.TIMESTAMP, C.BASKET_ID], kind="stable")
        .reset_index(drop=True)
    )
    transactions[C.TIMESTAMP] = transactions[C.TIMESTAMP].astype("datetime64[ns]")

    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: cust_ids,
            C.SIGNUP_DATE: (start + pd.to_timedelta(np.floor(signup), unit="D")).astype("datetime64[ns]"),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )

    offers, events, affinity = _offers_and_events(
        cfg, rng, start, cats, prod_cat, prod_ids, popularity, pref, signup, end_day, cust_ids
    )
    truth_customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: cust_ids,
            "segment": seg.astype("int64"),
            "segment_name": np.array(SEGMENT_NAMES)[seg],
            "preferred_department": np.array(list(DEPARTMENTS))[np.array(SEGMENT_DEPARTMENT)[seg]],
            "signup_date": customers[C.SIGNUP_DATE],
            "churned": churned,
            "churn_date": (start + pd.to_timedelta(churn_day, unit="D")).astype("datetime64[ns]"),
            "baskets_per_week": rate * 7.0,
        }
    )
    truth_pref = pd.DataFrame(pref, columns=[c for _, c in cats])
    truth_pref.insert(0, C.CUSTOMER_ID, cust_ids)
    tables = {
        C.TRANSACTIONS: transactions,
        C.PRODUCTS: products,
        C.CUSTOMERS: customers,
        C.OFFERS: offers,
        C.OFFER_EVENTS: events,
    }
    truth = {"customers": truth_customers, "category_preferences": truth_pref, "offer_affinity": affinity}
    return tables, truth


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


def _offers_and_events(cfg, rng, start, cats, prod_cat, prod_ids, popularity, pref, signup, end_day, cust_ids):
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
    return offers, events, affinity_truth
