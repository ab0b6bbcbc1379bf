"""Customer features as of a date, computed only from data strictly before it.

One row per customer who bought before ``as_of``. docs/features.md defines every column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys import constants as C

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
    """One row per basket: customer, time of the basket and its spend.

    Without ``basket_id`` a basket is a customer's lines sharing one timestamp.
    """
    key = C.BASKET_ID if C.BASKET_ID in transactions else C.TIMESTAMP
    b = transactions.groupby([C.CUSTOMER_ID, key], sort=False, observed=True).agg(
        time=(C.TIMESTAMP, "min"), spend=(C.AMOUNT, "sum")
    )
    b = b.reset_index()[[C.CUSTOMER_ID, "time", "spend"]]
    return b.sort_values([C.CUSTOMER_ID, "time"], kind="stable").reset_index(drop=True)


def _trend(recent: pd.Series, previous: pd.Series) -> pd.Series:
    """(recent - previous) / (recent + previous), in [-1, 1]; 0 when both are 0."""
    total = recent + previous
    return ((recent - previous) / total.where(total > 0)).fillna(0.0)


def before(df: pd.DataFrame | None, as_of: pd.Timestamp, column: str = C.TIMESTAMP) -> pd.DataFrame | None:
    """Rows strictly before ``as_of``."""
    if df is None:
        return None
    return df[df[column] < as_of]


def build_features(
    transactions: pd.DataFrame,
    as_of: str | pd.Timestamp,
    *,
    products: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    offer_events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features of every customer who bought before ``as_of``, indexed by customer_id.

    Only rows with a timestamp strictly before ``as_of`` are read.
    """
    as_of = pd.Timestamp(as_of)
    tx = before(transactions, as_of)
    if tx.empty:
        raise ValueError(f"no transactions before as_of {as_of:%Y-%m-%d}")
    b = baskets(tx)
    out = _visits(b, as_of, customers)
    _windows(out, b, as_of)
    _breadth_and_discounts(out, tx, products)
    _offer_counts(out, before(offer_events, as_of))
    out["favourite_department"] = _favourite_department(tx, products, out.index)
    out.index.name = C.CUSTOMER_ID
    return out[[*FEATURE_COLUMNS, "favourite_department"]]


def _visits(b: pd.DataFrame, as_of: pd.Timestamp, customers: pd.DataFrame | None) -> pd.DataFrame:
    """Recency, frequency, monetary value, tenure and the gaps between visits."""
    g = b.groupby(C.CUSTOMER_ID, sort=True)
    first, last = g["time"].min(), g["time"].max()
    out = pd.DataFrame(index=first.index)
    out["recency_days"] = (as_of - last) / DAY
    out["frequency"] = g.size().astype("int64")
    out["monetary_total"] = g["spend"].sum()
    out["monetary_mean_basket"] = out["monetary_total"] / out["frequency"]
    start = first
    if customers is not None and C.SIGNUP_DATE in customers:
        signup = customers.set_index(C.CUSTOMER_ID)[C.SIGNUP_DATE].reindex(out.index)
        start = pd.concat([first, signup.where(signup < as_of)], axis=1).min(axis=1)
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


def _breadth_and_discounts(out: pd.DataFrame, tx: pd.DataFrame, products: pd.DataFrame | None) -> None:
    """Categories (or products) bought, and the share of spend that was discounted."""
    if products is not None and C.CATEGORY in products:
        cat = tx[[C.CUSTOMER_ID, C.PRODUCT_ID]].merge(products[[C.PRODUCT_ID, C.CATEGORY]], on=C.PRODUCT_ID, how="left")
        out["category_breadth"] = cat.groupby(C.CUSTOMER_ID)[C.CATEGORY].nunique().reindex(out.index, fill_value=0)
    else:
        out["category_breadth"] = tx.groupby(C.CUSTOMER_ID)[C.PRODUCT_ID].nunique().reindex(out.index)
    if C.DISCOUNT in tx:
        spend = tx[C.AMOUNT].clip(lower=0)
        discounted = spend.where(tx[C.DISCOUNT] > 0, 0.0)
        total = spend.groupby(tx[C.CUSTOMER_ID]).sum()
        out["discount_share"] = (discounted.groupby(tx[C.CUSTOMER_ID]).sum() / total.where(total > 0)).reindex(
            out.index
        )
    else:
        out["discount_share"] = np.nan


def _offer_counts(out: pd.DataFrame, ev: pd.DataFrame | None) -> None:
    """Offers sent and redeemed, and the redemption rate."""
    if ev is not None and len(ev):
        counts = ev.groupby([C.CUSTOMER_ID, C.EVENT]).size().unstack(fill_value=0)
        sent = counts.get("sent", pd.Series(0, index=counts.index))
        redeemed = counts.get("redeemed", pd.Series(0, index=counts.index))
        out["offers_sent"] = sent.reindex(out.index, fill_value=0).astype("int64")
        out["offers_redeemed"] = redeemed.reindex(out.index, fill_value=0).astype("int64")
    else:
        out["offers_sent"] = 0
        out["offers_redeemed"] = 0
    out["redemption_rate"] = out["offers_redeemed"] / out["offers_sent"].where(out["offers_sent"] > 0)


def _favourite_department(tx: pd.DataFrame, products: pd.DataFrame | None, index: pd.Index) -> pd.Series:
    """The department of each customer's largest spend (ties: the first by name)."""
    if products is None or C.DEPARTMENT not in products:
        return pd.Series(pd.NA, index=index, dtype="string")
    dept = tx[[C.CUSTOMER_ID, C.PRODUCT_ID, C.AMOUNT]].merge(
        products[[C.PRODUCT_ID, C.DEPARTMENT]], on=C.PRODUCT_ID, how="left"
    )
    spend = dept.groupby([C.CUSTOMER_ID, C.DEPARTMENT], observed=True)[C.AMOUNT].sum().reset_index()
    spend = spend.sort_values([C.CUSTOMER_ID, C.AMOUNT, C.DEPARTMENT], ascending=[True, False, True])
    return spend.drop_duplicates(C.CUSTOMER_ID).set_index(C.CUSTOMER_ID)[C.DEPARTMENT].reindex(index).astype("string")


def department_shares(
    transactions: pd.DataFrame,
    products: pd.DataFrame,
    as_of: str | pd.Timestamp,
    departments: list[str] | None = None,
    top: int = 8,
) -> pd.DataFrame:
    """Share of each customer's spend per department before ``as_of``.

    Columns are ``share_<DEPARTMENT>`` for the given departments, or the ``top`` departments
    by total spend.
    """
    tx = before(transactions, pd.Timestamp(as_of))
    d = tx[[C.CUSTOMER_ID, C.PRODUCT_ID, C.AMOUNT]].merge(
        products[[C.PRODUCT_ID, C.DEPARTMENT]], on=C.PRODUCT_ID, how="left"
    )
    d = d[d[C.AMOUNT] > 0]
    table = d.pivot_table(
        index=C.CUSTOMER_ID, columns=C.DEPARTMENT, values=C.AMOUNT, aggfunc="sum", fill_value=0.0, observed=True
    )
    if departments is None:
        departments = table.sum().sort_values(ascending=False).index[:top].tolist()
    shares = table.div(table.sum(axis=1), axis=0).reindex(columns=departments, fill_value=0.0)
    shares.columns = [f"share_{c}" for c in departments]
    return shares


def weekly_history(transactions: pd.DataFrame, as_of: str | pd.Timestamp, weeks: int = 52) -> pd.DataFrame:
    """Each customer's spend and baskets per week over the ``weeks`` weeks before ``as_of``
    (``customer_id, week, spend, baskets``; ``week`` its first day; weeks without a purchase
    are absent): a customer's purchase history over time, for the page and reports."""
    as_of = pd.Timestamp(as_of)
    start = as_of - pd.Timedelta(weeks=weeks)
    b = baskets(transactions[(transactions[C.TIMESTAMP] < as_of) & (transactions[C.TIMESTAMP] >= start)])
    week = start + pd.to_timedelta(((b["time"] - start) // pd.Timedelta(weeks=1)) * 7, unit="D")
    g = b.assign(week=week.dt.normalize()).groupby([C.CUSTOMER_ID, "week"], sort=True)
    return g.agg(spend=("spend", "sum"), baskets=("spend", "size")).reset_index()
