"""The events database: offer events posted by marketing tools (sent, viewed, redeemed).

One table, ``offer_events``, with the data contract's columns; ``event_id`` is the primary key,
so posting the same event twice stores it once. Frequency caps and redemption limits read it
at once; the next training reads it as the dataset's ``offer_events`` (``recsys data copy``
can merge it). SQLite by default, PostgreSQL in production.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recsys import constants as C
from recsys.offers import EventArrays

METADATA = sa.MetaData()
EVENTS = sa.Table(
    "offer_events", METADATA,
    sa.Column(C.EVENT_ID, sa.String(128), primary_key=True),
    sa.Column(C.CUSTOMER_ID, sa.String(128), nullable=False, index=True),
    sa.Column(C.OFFER_ID, sa.String(128), nullable=False),
    sa.Column(C.EVENT, sa.String(16), nullable=False),
    sa.Column(C.TIMESTAMP, sa.DateTime, nullable=False),
    sa.Column(C.CAMPAIGN_ID, sa.String(128), nullable=True),
)


class EventStore:
    def __init__(self, url: str):
        self.url = url
        kwargs = {"connect_args": {"check_same_thread": False}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        self.engine = sa.create_engine(url, **kwargs)
        METADATA.create_all(self.engine)
        # Built once: SQLAlchemy caches its compiled form, so a request pays only for the query.
        self._by_customers = sa.select(EVENTS.c[C.CUSTOMER_ID], EVENTS.c[C.OFFER_ID], EVENTS.c[C.EVENT],
                                       EVENTS.c[C.TIMESTAMP]).where(
            EVENTS.c[C.CUSTOMER_ID].in_(sa.bindparam("ids", expanding=True)))

    def add(self, events: list[dict]) -> int:
        """Insert events (dicts with the table's columns); returns how many were new."""
        if not events:
            return 0
        rows = [{C.EVENT_ID: str(e[C.EVENT_ID]), C.CUSTOMER_ID: str(e[C.CUSTOMER_ID]), C.OFFER_ID: str(e[C.OFFER_ID]),
                 C.EVENT: e[C.EVENT], C.TIMESTAMP: pd.Timestamp(e[C.TIMESTAMP]).tz_localize(None).to_pydatetime()
                 if pd.Timestamp(e[C.TIMESTAMP]).tzinfo is None else
                 pd.Timestamp(e[C.TIMESTAMP]).tz_convert("UTC").tz_localize(None).to_pydatetime(),
                 C.CAMPAIGN_ID: None if e.get(C.CAMPAIGN_ID) is None else str(e[C.CAMPAIGN_ID])} for e in events]
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(EVENTS).values(rows).on_conflict_do_nothing(index_elements=[C.EVENT_ID])
        with self.engine.begin() as conn:  # one transaction: all stored or none
            result = conn.execute(stmt)
        return int(result.rowcount or 0)

    def for_customers(self, customer_ids, id_type=str) -> EventArrays:
        """The customers' events as arrays, ids converted back to the model's id type."""
        keys = [str(c) for c in customer_ids]
        with self.engine.connect() as conn:
            rows = conn.execute(self._by_customers, {"ids": keys}).all()
        if not rows:
            empty = np.array([], dtype=object)
            return EventArrays(empty, empty, empty, np.array([], dtype="datetime64[ns]"))
        cust, offer, kind, ts = zip(*rows)
        return EventArrays(np.array([id_type(c) for c in cust], dtype=object),
                           np.array([_maybe_int(o) for o in offer], dtype=object),
                           np.array(kind, dtype=object), np.array(ts, dtype="datetime64[ns]"))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar_one())

    def frame(self) -> pd.DataFrame:
        """Every event, as the data contract's offer_events table (for the next training)."""
        with self.engine.connect() as conn:
            return pd.read_sql(sa.select(EVENTS), conn)


def _maybe_int(v: str):
    try:
        return int(v)
    except ValueError:
        return v
