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
from recsys.data.synthetic_campaigns import offers_and_events
from recsys.data.synthetic_experiments import randomised_campaigns

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
    # Randomised campaigns with planted effects (recsys.data.synthetic_experiments); none by default.
    experiments: int = 0
    experiment_share: float = 0.5  # share of each experiment's customers held back as control
    experiment_effect: float = 2.0  # response probability per unit of preference share for the category
    experiment_window_days: int = 14


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

    cats = [(d, c) for d, cs in DEPARTMENTS.items() for c in cs]
    products, prod_cat, prod_ids, price, popularity = _products(cfg, rng, cats)
    n = cfg.customers
    seg, pref, signup, churned, churn_day, end_day, rate = _customer_traits(cfg, rng, cats)
    cust_ids = _customer_ids(n)
    transactions = _transactions(
        cfg, rng, start, seg, pref, signup, churned, end_day, rate, prod_cat, prod_ids, price, popularity, cust_ids
    )

    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: cust_ids,
            C.SIGNUP_DATE: (start + pd.to_timedelta(np.floor(signup), unit="D")).astype("datetime64[ns]"),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )

    offers, events, affinity = offers_and_events(
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
    if cfg.experiments:
        truth.update(randomised_campaigns(cfg, start, tables, pref, signup, end_day, cust_ids, cats))
    return tables, truth


def _products(cfg: SynthConfig, rng: np.random.Generator, cats: list) -> tuple:
    """Products: categories of departments, log-normal prices, Zipf popularity within category."""
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

    return products, prod_cat, prod_ids, price, popularity


def _customer_traits(cfg: SynthConfig, rng: np.random.Generator, cats: list) -> tuple:
    """Customers: segment, preferences, sign-up, churn and purchase rate."""
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

    return seg, pref, signup, churned, churn_day, end_day, rate


def _transactions(
    cfg, rng, start, seg, pref, signup, churned, end_day, rate, prod_cat, prod_ids, price, popularity, cust_ids
) -> pd.DataFrame:
    """Baskets (a Poisson process over each customer's active span; churners fade out) and
    their lines (category from the customer's preference, product by popularity within it)."""
    n, n_cat, day_s = len(seg), int(prod_cat.max()) + 1, 86_400.0
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

    return transactions
