"""Churn labels and the rolling-origin snapshots the churn model learns from.

A customer who bought before ``as_of`` churns when they buy nothing in
``(as_of, as_of + horizon]``. Features come only from data before each snapshot, labels only
from after it; docs/churn.md describes the protocol.
"""

from __future__ import annotations

import logging

import pandas as pd

from recsys import constants as C
from recsys.customers import customer_profile
from recsys.customers.history import PurchaseHistory
from recsys.data.line_file import time_span

logger = logging.getLogger(__name__)


def churn_labels(transactions, as_of: str | pd.Timestamp, horizon_days: int = C.DEFAULT_HORIZON_DAYS) -> pd.Series:
    """1 for customers who bought before ``as_of`` and nothing in ``(as_of, as_of + horizon]``
    (``transactions``: the lines, or a PurchaseHistory of them)."""
    as_of = pd.Timestamp(as_of)
    h = PurchaseHistory.of(transactions, baskets_only=True)
    before = pd.Index(h.baskets_before(as_of)[C.CUSTOMER_ID].unique())
    window = h.between(as_of, as_of + pd.Timedelta(days=horizon_days), right_closed=True)
    buyers = pd.Index(window[C.CUSTOMER_ID].unique())
    labels = pd.Series((~before.isin(buyers)).astype("int64"), index=before, name="churned")
    labels.index.name = C.CUSTOMER_ID
    return labels.sort_index()


def snapshot_dates(first: str | pd.Timestamp, last: str | pd.Timestamp, every_days: int = 14) -> list[pd.Timestamp]:
    """Snapshot dates from ``first`` to ``last``, every ``every_days`` days."""
    return list(pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq=f"{every_days}D"))


def churn_snapshots(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    horizon_days: int = C.DEFAULT_HORIZON_DAYS,
    every_days: int = 14,
    count: int = 18,
) -> list[pd.Timestamp]:
    """At most ``count`` snapshots every ``every_days``, ending with the latest whose label window
    closes by the last transaction, the first 28 days after the first (so features have history)."""
    first_line, last_line = time_span(transactions)
    last = min(as_of, last_line).normalize() - pd.Timedelta(days=horizon_days)
    first_possible = first_line.normalize() + pd.Timedelta(days=28)
    first = max(first_possible, last - pd.Timedelta(days=every_days * (count - 1)))
    snaps = snapshot_dates(first, last, every_days)
    if not snaps or snaps[-1] != last:
        snaps = [s for s in snaps if s < last] + [last]
    return snaps


def training_set(
    ds,
    snapshots: list[pd.Timestamp],
    horizon_days: int = C.DEFAULT_HORIZON_DAYS,
    history: PurchaseHistory | None = None,
) -> pd.DataFrame:
    """Features and labels at each snapshot, stacked, with a ``snapshot`` column.

    Every snapshot's label window must lie inside the data. ``history``: the dataset's
    PurchaseHistory when the caller has it (built here otherwise, once for every snapshot).
    """
    last = time_span(ds.transactions)[1]
    history = history or PurchaseHistory.of(ds.transactions, ds.products, ds.customers, ds.offer_events)
    frames = []
    for s in snapshots:
        if s + pd.Timedelta(days=horizon_days) > last:
            raise ValueError(
                f"snapshot {s:%Y-%m-%d}: its {horizon_days}-day label window ends after the data ({last:%Y-%m-%d})"
            )
        f = customer_profile(history, s, horizon_days=horizon_days)
        f["churned"] = churn_labels(history, s, horizon_days).reindex(f.index)
        f["snapshot"] = s
        frames.append(f.reset_index())
    return pd.concat(frames, ignore_index=True)
