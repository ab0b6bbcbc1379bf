"""Customer features as of a date, computed only from data strictly before it.

One row per customer who bought before ``as_of``. docs/features.md defines every column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.customers.history import PurchaseHistory, basket_table

DAY = pd.Timedelta(days=1)

FEATURE_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_mean_basket",
    "tenure_days",
    "gap_mean_days",
    "gap_std_days",
    "overdue_ratio",
    "baskets_30d",
    "spend_30d",
    "trend_30d",
    "baskets_90d",
    "spend_90d",
    "trend_90d",
    "category_breadth",
    "discount_share",
    "offers_sent",
    "offers_redeemed",
    "redemption_rate",
)


def baskets(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per basket: customer, time of the basket and its spend, sorted by customer and time.

    Without ``basket_id`` a basket is a customer's lines sharing one timestamp.
    """
    b = basket_table(transactions)[[C.CUSTOMER_ID, "time", "spend"]]
    return b.sort_values([C.CUSTOMER_ID, "time"], kind="stable").reset_index(drop=True)


def _trend(recent: pd.Series, previous: pd.Series) -> pd.Series:
    """(recent - previous) / (recent + previous), in [-1, 1]; 0 when both are 0."""
    total = recent + previous
    return ((recent - previous) / total.where(total > 0)).fillna(0.0)


def build_features(
    transactions: pd.DataFrame | PurchaseHistory,
    as_of: str | pd.Timestamp,
    *,
    products: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    offer_events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features of every customer who bought before ``as_of``, indexed by customer_id.

    Only rows with a timestamp strictly before ``as_of`` are read. ``transactions`` may be a
    :class:`PurchaseHistory` (which carries the products, customers and offer events it was
    built with): features at many dates then cost one reduction of the lines.
    """
    as_of = pd.Timestamp(as_of)
    h = PurchaseHistory.of(transactions, products, customers, offer_events)
    b = h.baskets_before(as_of)
    if b.empty:
        raise ValueError(f"no transactions before as_of {as_of:%Y-%m-%d}")
    out = _visits(b, as_of, h.signup)
    _windows(out, b, as_of)
    _breadth_and_discounts(out, b, h, as_of)
    _offer_counts(out, h.events_before(as_of))
    out["favourite_department"] = _favourite_department(h.departments_before(as_of), out.index)
    out.index.name = C.CUSTOMER_ID
    return out[[*FEATURE_COLUMNS, "favourite_department"]]


def _visits(b: pd.DataFrame, as_of: pd.Timestamp, signup: pd.Series | None) -> pd.DataFrame:
    """Recency, frequency, monetary value, tenure and the gaps between visits."""
    g = b.groupby(C.CUSTOMER_ID, sort=True)
    first, last = g["time"].min(), g["time"].max()
    out = pd.DataFrame(index=first.index)
    out["recency_days"] = (as_of - last) / DAY
    out["frequency"] = g.size().astype("int64")
    out["monetary_total"] = g["spend"].sum()
    out["monetary_mean_basket"] = out["monetary_total"] / out["frequency"]
    start = first
    if signup is not None:
        known = signup.reindex(out.index)
        start = pd.concat([first, known.where(known < as_of)], axis=1).min(axis=1)
    out["tenure_days"] = (as_of - start) / DAY

    # Gaps between distinct purchase days: two baskets on one day are one visit.
    days = b[[C.CUSTOMER_ID]].assign(day=b["time"].dt.normalize()).drop_duplicates()
    gaps = days.groupby(C.CUSTOMER_ID, sort=False)["day"].diff() / DAY
    gap = gaps.groupby(days[C.CUSTOMER_ID]).agg(["mean", "std"])
    out["gap_mean_days"] = gap["mean"].reindex(out.index)
    out["gap_std_days"] = gap["std"].reindex(out.index)
    out["overdue_ratio"] = out["recency_days"] / out["gap_mean_days"].where(out["gap_mean_days"] > 0)
    return out


def _windows(out: pd.DataFrame, b: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Baskets, spend and the visit trend in the last 30 and 90 days."""
    age = (as_of - b["time"]) / DAY
    for days in (30, 90):
        recent = b[age <= days].groupby(C.CUSTOMER_ID)
        prev = b[(age > days) & (age <= 2 * days)].groupby(C.CUSTOMER_ID).size()
        out[f"baskets_{days}d"] = recent.size().reindex(out.index, fill_value=0).astype("int64")
        out[f"spend_{days}d"] = recent["spend"].sum().reindex(out.index, fill_value=0.0)
        out[f"trend_{days}d"] = _trend(out[f"baskets_{days}d"], prev.reindex(out.index, fill_value=0))


def _breadth_and_discounts(out: pd.DataFrame, b: pd.DataFrame, h: PurchaseHistory, as_of: pd.Timestamp) -> None:
    """Categories (or products) bought, and the share of spend that was discounted."""
    first = h.first_bought_before(as_of)
    out["category_breadth"] = first.groupby(C.CUSTOMER_ID).size().reindex(out.index, fill_value=0).astype("int64")
    if h.has_discount:
        g = b.groupby(C.CUSTOMER_ID)
        total = g["positive"].sum()
        out["discount_share"] = (g["discounted"].sum() / total.where(total > 0)).reindex(out.index)
    else:
        out["discount_share"] = np.nan


def _offer_counts(out: pd.DataFrame, ev: pd.DataFrame | None) -> None:
    """Offers sent and redeemed, and the redemption rate."""
    if ev is not None and len(ev):
        redeemed = ev.groupby(C.CUSTOMER_ID)["redeemed"].agg(["size", "sum"])
        out["offers_sent"] = (redeemed["size"] - redeemed["sum"]).reindex(out.index, fill_value=0).astype("int64")
        out["offers_redeemed"] = redeemed["sum"].reindex(out.index, fill_value=0).astype("int64")
    else:
        out["offers_sent"] = 0
        out["offers_redeemed"] = 0
    out["redemption_rate"] = out["offers_redeemed"] / out["offers_sent"].where(out["offers_sent"] > 0)


def _favourite_department(d: pd.DataFrame | None, index: pd.Index) -> pd.Series:
    """The department of each customer's largest spend (ties: the first by name)."""
    if d is None:
        return pd.Series(pd.NA, index=index, dtype="string")
    spend = d.groupby([C.CUSTOMER_ID, C.DEPARTMENT], observed=True)["amount"].sum().reset_index()
    spend = spend.sort_values([C.CUSTOMER_ID, "amount", C.DEPARTMENT], ascending=[True, False, True])
    return spend.drop_duplicates(C.CUSTOMER_ID).set_index(C.CUSTOMER_ID)[C.DEPARTMENT].reindex(index).astype("string")


def department_shares(
    transactions: pd.DataFrame | PurchaseHistory,
    products: pd.DataFrame | None,
    as_of: str | pd.Timestamp,
    departments: list[str] | None = None,
    top: int = 8,
) -> pd.DataFrame:
    """Share of each customer's spend (positive lines) per department before ``as_of``.

    Columns are ``share_<DEPARTMENT>`` for the given departments, or the ``top`` departments
    by total spend.
    """
    h = PurchaseHistory.of(transactions, products)
    d = h.departments_before(pd.Timestamp(as_of))
    table = d.groupby([C.CUSTOMER_ID, C.DEPARTMENT], observed=True)["positive"].sum().unstack(fill_value=0.0)
    table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
    if departments is None:
        departments = table.sum().sort_values(ascending=False).index[:top].tolist()
    shares = table.div(table.sum(axis=1), axis=0).reindex(columns=departments, fill_value=0.0)
    shares.columns = [f"share_{c}" for c in departments]
    shares.columns.name = None
    return shares


def weekly_history(
    transactions: pd.DataFrame | PurchaseHistory, as_of: str | pd.Timestamp, weeks: int = 52
) -> pd.DataFrame:
    """Each customer's spend and baskets per week over the ``weeks`` weeks before ``as_of``
    (``customer_id, week, spend, baskets``; ``week`` its first day; weeks without a purchase
    are absent): a customer's purchase history over time, for the page and reports."""
    as_of = pd.Timestamp(as_of)
    start = as_of - pd.Timedelta(weeks=weeks)
    b = PurchaseHistory.of(transactions, baskets_only=True).between(start, as_of)
    week = start + pd.to_timedelta(((b["time"] - start) // pd.Timedelta(weeks=1)) * 7, unit="D")
    g = b.assign(week=week.dt.normalize()).groupby([C.CUSTOMER_ID, "week"], sort=True)
    return g.agg(spend=("spend", "sum"), baskets=("spend", "size")).reset_index()
