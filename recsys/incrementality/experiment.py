"""The experiment table: who was assigned to which arm of which offer, and what they bought in
the window after.

Built from the data contract: ``sent`` events are the treated arm, ``held_out`` events the
control arm (both only ever drawn among customers who would get the offer), and transactions
give the outcomes over ``window_days`` after each assignment. Nothing after a window's end is
read, and an assignment whose window has not ended by the last transaction is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.data.line_file import LineFile
from recsys.incrementality.lift import ARM, CONTROL, GROUP, TREATED

DEFAULT_WINDOW_DAYS = 14
ASSIGNED_AT = "assigned_at"


def assignments(offer_events: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (customer, offer) with a ``sent`` or ``held_out`` event: the arm, the first
    such event's time, its campaign and propensity. A pair with both (a contaminated
    assignment) is left out."""
    cols = [C.CUSTOMER_ID, C.OFFER_ID, ARM, ASSIGNED_AT, C.CAMPAIGN_ID, C.PROPENSITY]
    if offer_events is None or offer_events.empty:
        return pd.DataFrame(columns=cols)
    ev = offer_events[offer_events[C.EVENT].isin([C.SENT, C.HELD_OUT])]
    ev = ev.assign(**{c: ev.get(c, np.nan) for c in (C.CAMPAIGN_ID, C.PROPENSITY)})
    g = ev.sort_values(C.TIMESTAMP, kind="stable").groupby([C.CUSTOMER_ID, C.OFFER_ID], sort=False)
    first = g.first().reset_index()
    arms = g[C.EVENT].nunique()
    first = first[(arms == 1).to_numpy()]
    first[ARM] = np.where(first[C.EVENT] == C.HELD_OUT, CONTROL, TREATED)
    return first.rename(columns={C.TIMESTAMP: ASSIGNED_AT})[cols].reset_index(drop=True)


def has_control_groups(offer_events: pd.DataFrame | None) -> bool:
    return offer_events is not None and bool((offer_events[C.EVENT] == C.HELD_OUT).any())


def experiment_transactions(
    transactions: pd.DataFrame | LineFile, offer_events: pd.DataFrame | None
) -> pd.DataFrame | None:
    """The transactions of the customers assigned to an offer that held back a control group:
    every line the lift of the data's experiments reads (None: no control group)."""
    if not has_control_groups(offer_events):  # the assignments of millions of events are not cheap
        return None
    a = assignments(offer_events)
    controlled = a[a[ARM] == CONTROL][C.OFFER_ID].unique()
    if not len(controlled):
        return None
    customers = a.loc[a[C.OFFER_ID].isin(controlled), C.CUSTOMER_ID].unique()
    if isinstance(transactions, LineFile):  # lines on disk: only these customers' are read
        return transactions.frame(customers).reset_index(drop=True)
    return transactions[transactions[C.CUSTOMER_ID].isin(customers)].reset_index(drop=True)


def experiment_table(
    transactions: pd.DataFrame,
    offer_events: pd.DataFrame | None,
    offers: pd.DataFrame,
    *,
    products: pd.DataFrame | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    cost: pd.Series | None = None,
    last: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per (customer, offer) assignment whose window has ended: ``group`` (the offer),
    ``arm``, ``assigned_at``, campaign, propensity, ``pre_spend`` (spend in the window before),
    and the outcomes in ``(assigned_at, assigned_at + window]``: ``offer_spend`` (on the offer's
    products), ``total_spend``, ``visits`` (baskets), ``redemptions`` (of this offer) and
    ``cost`` (redemptions x the offer's cost per redemption: ``cost`` per offer_id, or the
    catalog's ``cost``, else its ``value``). ``last``: the data's last moment, when
    ``transactions`` are only some customers' (:func:`experiment_transactions`); else their last."""
    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, not {window_days}")
    a = assignments(offer_events)
    window = pd.Timedelta(days=window_days)
    last = transactions[C.TIMESTAMP].max() if last is None else last
    a = a[a[ASSIGNED_AT] + window <= last].reset_index(drop=True)
    if a.empty:
        return a.assign(
            **{
                GROUP: [],
                "pre_spend": [],
                "offer_spend": [],
                "total_spend": [],
                "visits": [],
                "redemptions": [],
                "cost": [],
            }
        )
    tx = transactions[transactions[C.TIMESTAMP] <= a[ASSIGNED_AT].max() + window]  # nothing later is read
    lines = (
        a[[C.CUSTOMER_ID, C.OFFER_ID, ASSIGNED_AT]]
        .reset_index()
        .merge(
            tx[[C.CUSTOMER_ID, C.PRODUCT_ID, C.TIMESTAMP, C.AMOUNT, *([C.BASKET_ID] if C.BASKET_ID in tx else [])]],
            on=C.CUSTOMER_ID,
        )
    )
    age = lines[C.TIMESTAMP] - lines[ASSIGNED_AT]
    after = lines[(age > pd.Timedelta(0)) & (age <= window)]
    before = lines[(age <= pd.Timedelta(0)) & (age > -window)]
    out = a.copy()
    out[GROUP] = out[C.OFFER_ID]
    out["pre_spend"] = before.groupby("index")[C.AMOUNT].sum().reindex(out.index, fill_value=0.0)
    out["total_spend"] = after.groupby("index")[C.AMOUNT].sum().reindex(out.index, fill_value=0.0)
    basket = C.BASKET_ID if C.BASKET_ID in after else C.TIMESTAMP
    out["visits"] = after.groupby("index")[basket].nunique().reindex(out.index, fill_value=0).astype("int64")
    targets = _offer_products(offers, products)
    on_offer = after.merge(targets, on=[C.OFFER_ID, C.PRODUCT_ID])
    out["offer_spend"] = on_offer.groupby("index")[C.AMOUNT].sum().reindex(out.index, fill_value=0.0)
    out["redemptions"] = _redemptions(out, offer_events, window)
    out["cost"] = out["redemptions"] * _cost_per_redemption(out[C.OFFER_ID], offers, cost)
    return out


def _offer_products(offers: pd.DataFrame, products: pd.DataFrame | None) -> pd.DataFrame:
    """(offer_id, product_id) of every product an offer targets: its product_ids, else its category's."""
    rows = []
    by_cat = (
        products.groupby(C.CATEGORY)[C.PRODUCT_ID].agg(list)
        if products is not None and C.CATEGORY in products
        else pd.Series(dtype=object)
    )
    for oid, ids, cat in zip(
        offers[C.OFFER_ID],
        offers.get(C.PRODUCT_IDS, [None] * len(offers)),
        offers.get(C.CATEGORY, [None] * len(offers)),
    ):
        if ids is None or not isinstance(ids, (list, tuple, np.ndarray)) or len(ids) == 0:
            ids = by_cat.get(cat, []) if isinstance(cat, str) else []
        rows.extend((oid, p) for p in ids)
    return pd.DataFrame(rows, columns=[C.OFFER_ID, C.PRODUCT_ID]).drop_duplicates()


def _redemptions(out: pd.DataFrame, offer_events: pd.DataFrame, window: pd.Timedelta) -> pd.Series:
    red = offer_events[offer_events[C.EVENT] == C.REDEEMED][[C.CUSTOMER_ID, C.OFFER_ID, C.TIMESTAMP]]
    m = out[[C.CUSTOMER_ID, C.OFFER_ID, ASSIGNED_AT]].reset_index().merge(red, on=[C.CUSTOMER_ID, C.OFFER_ID])
    age = m[C.TIMESTAMP] - m[ASSIGNED_AT]
    m = m[(age >= pd.Timedelta(0)) & (age <= window)]
    return m.groupby("index").size().reindex(out.index, fill_value=0).astype("int64")


def _cost_per_redemption(offer_ids: pd.Series, offers: pd.DataFrame, cost: pd.Series | None) -> np.ndarray:
    catalog = offers.set_index(C.OFFER_ID)
    per = cost if cost is not None else (catalog[C.COST] if C.COST in catalog else catalog[C.VALUE])
    per = per.fillna(catalog[C.VALUE]) if cost is None and C.COST in catalog else per
    return offer_ids.map(per).fillna(0.0).to_numpy(np.float64)


def campaign_experiment(experiment: pd.DataFrame) -> pd.DataFrame:
    """The experiment per (customer, campaign): a customer is treated when every assignment of
    theirs in the campaign was sent, control when every one was held back (mixed customers are
    left out). Outcomes are summed over the campaign's offers, except total spend and visits,
    which are the customer's (the first assignment's window)."""
    e = experiment[experiment[C.CAMPAIGN_ID].notna()]
    if e.empty:
        return e.assign(**{GROUP: []})
    g = e.sort_values(ASSIGNED_AT).groupby([C.CUSTOMER_ID, C.CAMPAIGN_ID], sort=False)
    out = g.agg(
        arms=(ARM, "nunique"),
        arm=(ARM, "first"),
        assigned_at=(ASSIGNED_AT, "first"),
        pre_spend=("pre_spend", "first"),
        total_spend=("total_spend", "first"),
        visits=("visits", "first"),
        offer_spend=("offer_spend", "sum"),
        redemptions=("redemptions", "sum"),
        cost=("cost", "sum"),
    )
    out = out[out["arms"] == 1].drop(columns="arms").reset_index()
    out[GROUP] = out[C.CAMPAIGN_ID].astype(str)
    return out
