"""Randomised campaigns for the synthetic generator, with planted heterogeneous effects.

Each experiment is an ``amount_off`` coupon on one category, sent on one day to every customer
active then, with a random ``control_share`` held back (``held_out`` events, with their
propensity). A treated customer responds with probability ``q`` that grows with their planted
preference for the category: within the window they make an extra basket of two units of the
category's most popular product and redeem the coupon. Control customers never respond; their
ordinary baskets (which may buy the same product anyway) are what "would have happened anyway".
The truth (``experiment_effects``) holds each customer's expected effect on total spend, visits
and redemptions, whichever arm they drew, so the planted average effect of an experiment is the
mean over its customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys import constants as C

COUPON_VALUE = 2.0  # dollars off per redemption: the discount cost
UNITS = 2  # units of the product in a responding customer's extra basket


def response_probability(preference: np.ndarray, effect: float) -> np.ndarray:
    """P(a treated customer responds): 2% plus ``effect`` x their preference share, at most 0.9."""
    return np.minimum(0.02 + effect * np.asarray(preference, dtype=np.float64), 0.9)


def randomised_campaigns(
    cfg,
    start: pd.Timestamp,
    tables: dict,
    pref: np.ndarray,
    signup: np.ndarray,
    end_day: np.ndarray,
    cust_ids: np.ndarray,
    cats: list,
) -> dict[str, pd.DataFrame]:
    """Offers, events and extra transactions of ``cfg.experiments`` randomised campaigns, and
    the truth; appended to ``tables`` in place. Its own random stream, so the rest of the data
    is the same with or without experiments."""
    rng = np.random.default_rng([cfg.seed, 2])
    products, tx = tables[C.PRODUCTS], tables[C.TRANSACTIONS]
    price = tx[tx[C.QUANTITY] > 0].groupby(C.PRODUCT_ID)[C.AMOUNT].median()
    window = cfg.experiment_window_days
    days = np.linspace(0.55, 0.95, cfg.experiments) * (cfg.days - window - 1)
    offers, events, lines, truth = [], [], [], []
    next_basket = int(tx[C.BASKET_ID].max()) + 1
    for e, day in enumerate(days):
        k = int(rng.integers(0, len(cats)))
        category = cats[k][1]
        members = products.loc[products[C.CATEGORY] == category, C.PRODUCT_ID]
        product = int(members.iloc[np.argmax(price.reindex(members).fillna(0).to_numpy() > 0)])
        offer_id, campaign = f"OX{e + 1:03d}", cfg.campaigns + e + 1
        t0 = start + pd.Timedelta(days=float(np.floor(day))) + pd.Timedelta(hours=9)
        offers.append(_offer(offer_id, category, product, t0, window))
        who = np.flatnonzero((signup < day) & (end_day > day))
        control = rng.random(len(who)) < cfg.experiment_share
        q = response_probability(pref[who, k], cfg.experiment_effect)
        responds = ~control & (rng.random(len(who)) < q)
        amount = UNITS * float(price.get(product, 1.0))
        at = t0 + pd.to_timedelta(rng.uniform(0.1, window - 0.1, len(who)), unit="D")
        events.append(_events(cust_ids[who], offer_id, campaign, t0, control, responds, at, cfg.experiment_share))
        r = np.flatnonzero(responds)
        lines.append(_extra_baskets(cust_ids[who[r]], product, at[r], amount, next_basket))
        next_basket += len(r)
        truth.append(
            pd.DataFrame(
                {
                    C.CUSTOMER_ID: cust_ids[who],
                    C.OFFER_ID: offer_id,
                    C.CAMPAIGN_ID: campaign,
                    "arm": np.where(control, "control", "treated"),
                    "response_probability": q,
                    "effect_total_spend": q * amount,
                    "effect_visits": q,
                    "effect_redemptions": q,
                }
            )
        )
    _append(tables, offers, events, lines)
    return {"experiment_effects": pd.concat(truth, ignore_index=True)}


def _append(tables: dict, offers: list, events: list, lines: list) -> None:
    """The experiments' offers, events and baskets added to the tables, in time order."""
    tables[C.OFFERS] = pd.concat([tables[C.OFFERS], pd.DataFrame(offers)], ignore_index=True)
    ev = pd.concat([tables[C.OFFER_EVENTS], *events], ignore_index=True)
    tables[C.OFFER_EVENTS] = ev.sort_values(C.TIMESTAMP, kind="stable").reset_index(drop=True)
    extra = pd.concat(lines, ignore_index=True).astype({C.TIMESTAMP: "datetime64[ns]"})
    tables[C.TRANSACTIONS] = (
        pd.concat([tables[C.TRANSACTIONS], extra], ignore_index=True)
        .sort_values([C.TIMESTAMP, C.BASKET_ID], kind="stable")
        .reset_index(drop=True)
    )


def _extra_baskets(customers, product: int, at, amount: float, first_basket: int) -> pd.DataFrame:
    """A responding customer's extra basket: two units of the coupon's product, coupon applied."""
    return pd.DataFrame(
        {
            C.CUSTOMER_ID: customers,
            C.PRODUCT_ID: np.int64(product),
            C.TIMESTAMP: at.floor("s"),
            C.QUANTITY: np.int64(UNITS),
            C.AMOUNT: round(amount, 2),
            C.BASKET_ID: first_basket + np.arange(len(customers)),
            C.STORE_ID: np.int64(1),
            C.DISCOUNT: COUPON_VALUE,
        }
    )


def _offer(offer_id: str, category: str, product: int, t0: pd.Timestamp, window: int) -> dict:
    return {
        C.OFFER_ID: offer_id,
        C.NAME: f"${COUPON_VALUE:.2f} off {category}",
        C.OFFER_TYPE: "amount_off",
        C.VALUE: COUPON_VALUE,
        C.PRODUCT_IDS: [product],
        C.CATEGORY: None,
        C.START_DATE: t0.normalize(),
        C.END_DATE: (t0 + pd.Timedelta(days=window)).normalize(),
        C.CHANNELS: None,
        C.COST: COUPON_VALUE,
        "campaign": 0,
    }


def _events(customers, offer_id, campaign, t0, control, responds, at, share) -> pd.DataFrame:
    arm = pd.DataFrame(
        {
            C.CUSTOMER_ID: customers,
            C.OFFER_ID: offer_id,
            C.EVENT: np.where(control, C.HELD_OUT, C.SENT),
            C.TIMESTAMP: t0,
            C.CAMPAIGN_ID: campaign,
            C.PROPENSITY: np.where(control, share, 1 - share),
        }
    )
    red = pd.DataFrame(
        {
            C.CUSTOMER_ID: customers[responds],
            C.OFFER_ID: offer_id,
            C.EVENT: C.REDEEMED,
            C.TIMESTAMP: at[responds].floor("s") + pd.Timedelta(seconds=1),
            C.CAMPAIGN_ID: campaign,
            C.PROPENSITY: np.nan,
        }
    )
    out = pd.concat([arm, red], ignore_index=True)
    out.insert(0, C.EVENT_ID, [f"X{campaign}-{i:07d}" for i in range(len(out))])
    return out.astype({C.TIMESTAMP: "datetime64[ns]"})
