"""Retention analytics: retention, churn and repeat-purchase rates, cohort retention.

A customer is **active** on a date when they bought within the ``activity_days`` days up to
and including it (default 90). docs/features.md states the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.customers.features import baskets

DEFAULT_ACTIVITY_DAYS = 90


def active_customers(
    transactions: pd.DataFrame, on: pd.Timestamp, activity_days: int = DEFAULT_ACTIVITY_DAYS
) -> pd.Index:
    """Customers who bought in ``(on - activity_days, on]``."""
    on = pd.Timestamp(on)
    t = transactions[C.TIMESTAMP]
    window = transactions[(t > on - pd.Timedelta(days=activity_days)) & (t <= on)]
    return pd.Index(window[C.CUSTOMER_ID].unique())


@dataclass(frozen=True)
class PeriodRetention:
    start: pd.Timestamp
    end: pd.Timestamp
    active_at_start: int
    active_at_end: int
    new_customers: int
    retained: int  # active at both ends

    @property
    def retention_rate(self) -> float:
        """((active at end - new during period) / active at start) x 100."""
        if self.active_at_start == 0:
            return float("nan")
        return (self.active_at_end - self.new_customers) / self.active_at_start * 100.0

    @property
    def churn_rate(self) -> float:
        """Share (%) of customers active at the start who are not active at the end."""
        if self.active_at_start == 0:
            return float("nan")
        return (self.active_at_start - self.retained) / self.active_at_start * 100.0


def period_retention(
    transactions: pd.DataFrame,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    activity_days: int = DEFAULT_ACTIVITY_DAYS,
) -> PeriodRetention:
    """Retention over ``(start, end]``; new customers made their first purchase ever in it."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if end <= start:
        raise ValueError(f"period end {end:%Y-%m-%d} must be after its start {start:%Y-%m-%d}")
    s = active_customers(transactions, start, activity_days)
    e = active_customers(transactions, end, activity_days)
    first = transactions.groupby(C.CUSTOMER_ID)[C.TIMESTAMP].min()
    new = first[(first > start) & (first <= end)].index
    return PeriodRetention(start, end, len(s), len(e), len(new.intersection(e)), len(s.intersection(e)))


def repeat_purchase_rate(transactions: pd.DataFrame, start: str | pd.Timestamp, end: str | pd.Timestamp) -> float:
    """Share (%) of customers buying in ``(start, end]`` who bought on two or more days in it."""
    t = transactions[C.TIMESTAMP]
    tx = transactions[(t > pd.Timestamp(start)) & (t <= pd.Timestamp(end))]
    if tx.empty:
        return float("nan")
    days = tx.assign(day=tx[C.TIMESTAMP].dt.normalize()).groupby(C.CUSTOMER_ID)["day"].nunique()
    return float((days >= 2).mean() * 100.0)


def rolling_retention(
    transactions: pd.DataFrame, freq: str = "MS", activity_days: int = DEFAULT_ACTIVITY_DAYS, period_days: int = 90
) -> pd.DataFrame:
    """Retention, churn and repeat-purchase rates for periods of ``period_days`` ending at each
    period boundary (month starts by default) whose start lies after the first full activity
    window of the data."""
    t = transactions[C.TIMESTAMP]
    first_end = t.min().normalize() + pd.Timedelta(days=activity_days + period_days)
    ends = pd.date_range(first_end, t.max().normalize(), freq=freq)
    rows = []
    for end in ends:
        start = end - pd.Timedelta(days=period_days)
        p = period_retention(transactions, start, end, activity_days)
        rows.append(
            {
                "start": start,
                "end": end,
                "active_at_start": p.active_at_start,
                "active_at_end": p.active_at_end,
                "new_customers": p.new_customers,
                "retention_rate": p.retention_rate,
                "churn_rate": p.churn_rate,
                "repeat_purchase_rate": repeat_purchase_rate(transactions, start, end),
            }
        )
    return pd.DataFrame(rows)


def cohort_matrix(transactions: pd.DataFrame) -> pd.DataFrame:
    """Share of each first-purchase-month cohort buying in each month since (0 = first month)."""
    b = baskets(transactions)
    # A month the data does not cover to its end would look like churn: leave it out.
    last = (b["time"].max() + pd.Timedelta(days=1)).to_period("M") - 1
    b = b[b["time"].dt.to_period("M") <= last]
    month = b["time"].dt.to_period("M")
    cohort = month.groupby(b[C.CUSTOMER_ID]).transform("min")
    age = (month - cohort).map(lambda d: d.n).astype("int64")
    active = pd.DataFrame({"cohort": cohort, "age": age, C.CUSTOMER_ID: b[C.CUSTOMER_ID]}).drop_duplicates()
    counts = active.groupby(["cohort", "age"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=range((last - cohort.min()).n + 1), fill_value=0)
    sizes = counts[0]
    matrix = counts.div(sizes, axis=0)
    # Months a cohort has not lived through yet are unknown, not zero.
    for c in matrix.index:
        matrix.loc[c, [a for a in matrix.columns if a > (last - c).n]] = np.nan
    matrix.insert(0, "customers", sizes)
    matrix.index = matrix.index.astype(str)
    matrix.index.name = "cohort"
    return matrix
