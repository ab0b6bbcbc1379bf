"""The events store's events read beside a dataset's offer_events: one table for training,
exports and reports (recsys.data.event_store keeps them)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from recsys import constants as C
from recsys.data.event_store import EventStore
from recsys.errors import DataValidationError, Issue


def combine_offer_events(dataset: pd.DataFrame | None, store: pd.DataFrame | None) -> pd.DataFrame | None:
    """The dataset's offer events and the events store's, as one offer_events table.

    The store keeps ids as text; they take the dataset's id types (an id that is not of that type
    is refused by name). An event in both (same ``event_id``) is kept once, the dataset's copy.
    Sorted by time.
    """
    if store is None or store.empty:
        return dataset
    store = store.copy()
    if dataset is not None and len(dataset):
        for col in (C.CUSTOMER_ID, C.OFFER_ID, C.CAMPAIGN_ID):
            if col in dataset and pd.api.types.is_integer_dtype(dataset[col].dtype) and col in store:
                store[col] = _as_int(store[col], col)
        if C.EVENT_ID in dataset:
            store = store[~store[C.EVENT_ID].astype(str).isin(dataset[C.EVENT_ID].astype(str))]
        if C.EVENT_ID in dataset and not pd.api.types.is_string_dtype(dataset[C.EVENT_ID].dtype):
            store = store.drop(columns=[C.EVENT_ID])
        frames = [dataset, store]
    else:
        frames = [store]
    out = pd.concat([f for f in frames if len(f)], ignore_index=True)
    out[C.TIMESTAMP] = pd.to_datetime(out[C.TIMESTAMP])
    return out.sort_values(C.TIMESTAMP, kind="stable").reset_index(drop=True)


def _as_int(values: pd.Series, column: str) -> pd.Series:
    found = pd.to_numeric(values, errors="coerce")
    bad = values[found.isna() & values.notna()]
    if len(bad):
        raise DataValidationError(
            [
                Issue(
                    C.OFFER_EVENTS,
                    column,
                    "events store: not an id of the dataset's type (an integer)",
                    len(bad),
                    tuple(bad.astype(str).head(5)),
                )
            ]
        )
    return found.astype("Int64") if found.isna().any() else found.astype("int64")


def with_store_events(ds, url: str | None):
    """The dataset with the events store's events added to its offer_events (see
    :func:`combine_offer_events`): (dataset, events added, events left out because their offer is
    not in the catalog)."""
    from dataclasses import replace

    store = read_event_store(url)
    if store is None or store.empty:
        return ds, 0, 0
    known = set(ds.offers[C.OFFER_ID].astype(str)) if ds.offers is not None else set()
    unknown = ~store[C.OFFER_ID].astype(str).isin(known)
    combined = combine_offer_events(ds.offer_events, store[~unknown])
    before = 0 if ds.offer_events is None else len(ds.offer_events)
    return replace(ds, offer_events=combined), len(combined) - before, int(unknown.sum())


def read_event_store(url: str | None) -> pd.DataFrame | None:
    """Every event of the store at ``url``; None without a URL or when it names a SQLite file
    that does not exist (which is not created)."""
    if not url:
        return None
    made = sa.engine.make_url(url)
    if made.get_backend_name() == "sqlite" and (not made.database or not Path(made.database).exists()):
        return None
    store = EventStore(url)
    try:
        return store.frame()
    finally:
        store.engine.dispose()
