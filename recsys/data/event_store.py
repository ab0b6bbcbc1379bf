"""The events store: offer events posted by marketing tools (sent, viewed, redeemed) and the
control-group assignments the service and the exports record (held_out).

One table, ``offer_events``, with the data contract's columns; ``event_id`` is the primary key,
so posting the same event twice stores it once. Frequency caps and redemption limits read it
at once; training, exports and the lift report read it together with the dataset's
``offer_events`` (:func:`combine_offer_events`). SQLite by default, PostgreSQL in production.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from recsys import constants as C
from recsys.errors import RecsysError

ROWS_PER_THREAD = 100_000  # customers whose rows a thread remembers between commits (SQLite)

METADATA = sa.MetaData()
EVENTS = sa.Table(
    "offer_events",
    METADATA,
    sa.Column(C.EVENT_ID, sa.String(128), primary_key=True),
    sa.Column(C.CUSTOMER_ID, sa.String(128), nullable=False, index=True),
    sa.Column(C.OFFER_ID, sa.String(128), nullable=False),
    sa.Column(C.EVENT, sa.String(16), nullable=False),
    sa.Column(C.TIMESTAMP, sa.DateTime, nullable=False),
    sa.Column(C.CAMPAIGN_ID, sa.String(128), nullable=True),
    sa.Column(C.PROPENSITY, sa.Float, nullable=True),
)


class EventStore:
    def __init__(self, url: str):
        self.url = url
        kwargs = (
            {"connect_args": {"check_same_thread": False}}
            if url.startswith("sqlite")
            else {"pool_pre_ping": True, "connect_args": {"connect_timeout": 3}}  # never hang a request on it
        )
        self.engine = sa.create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_wal)
        METADATA.create_all(self.engine)
        _add_missing_columns(self.engine)
        # Built once: SQLAlchemy caches its compiled form, so a request pays only for the query.
        self._by_customers = sa.select(
            EVENTS.c[C.CUSTOMER_ID], EVENTS.c[C.OFFER_ID], EVENTS.c[C.EVENT], EVENTS.c[C.TIMESTAMP]
        ).where(EVENTS.c[C.CUSTOMER_ID].in_(sa.bindparam("ids", expanding=True)))
        # One customer's events, the service's hottest query, goes straight to the driver on a
        # connection kept per thread: compiled here once for the dialect, timestamps typed in
        # _timestamp.
        one = sa.select(*self._by_customers.selected_columns).where(EVENTS.c[C.CUSTOMER_ID] == sa.bindparam("id"))
        compiled = one.compile(dialect=self.engine.dialect)
        self._one_sql = str(compiled)
        self._one_positional = bool(compiled.positional)
        # sqlite3 opens no transaction for a SELECT; other drivers do, and _one_customer ends it
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._record = self._insert()  # record()'s statement, compiled at its first use and cached

    def add(self, events: list[dict], *, conflicts: str = "error") -> int:
        """Insert events (dicts with the table's columns) in one transaction; returns how many
        were new. An ``event_id`` stored already with the same payload is a duplicate and
        counted as such; with another payload it is refused (``EventConflict``, nothing stored)
        unless ``conflicts="ignore"`` (the first stored wins: the service's own held_out
        events, whose ids name the assignment). A database busy with another writer raises
        ``EventStoreBusy``, one that cannot be reached ``EventStoreUnavailable``: nothing is
        stored either way."""
        if not events:
            return 0
        rows = [_row(e) for e in events]
        unique: dict = {}
        clashing = []
        for r in rows:
            seen = unique.setdefault(r[C.EVENT_ID], r)
            if seen != r:
                clashing.append(r[C.EVENT_ID])
        if clashing and conflicts == "error":
            raise EventConflict(clashing, "sent twice in this request with different payloads")
        # RETURNING counts what was new on every back-end (PostgreSQL's rowcount is -1 here)
        stmt = self._insert().values(list(unique.values())).returning(EVENTS.c[C.EVENT_ID])
        with _store_errors(), self.engine.begin() as conn:  # one transaction: all stored or none
            new = set(conn.execute(stmt).scalars().all())
            known = [r for i, r in unique.items() if i not in new]
            if known and conflicts == "error":
                differ = self._differing(conn, known)
                if differ:
                    raise EventConflict(differ, "stored already with a different payload")
            return len(new)

    def record(self, events: list[dict]) -> None:
        """Insert events in one transaction, skipping ids stored already (the first stored
        wins): the service's held_out events, as it answers. One statement compiled once for all
        rows, without ``add``'s payload checks; raises as ``add`` does when the store is down."""
        if events:
            rows = list({r[C.EVENT_ID]: r for r in map(_row, events)}.values())
            with _store_errors(), self.engine.begin() as conn:
                conn.execute(self._record, rows)

    def _insert(self):
        """INSERT ... ON CONFLICT (event_id) DO NOTHING, in this back-end's dialect."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(EVENTS).on_conflict_do_nothing(index_elements=[C.EVENT_ID])

    @staticmethod
    def _differing(conn, rows: list[dict]) -> list[str]:
        """The ids among ``rows`` whose stored payload is not theirs."""
        stored = {
            r[C.EVENT_ID]: dict(r)
            for r in conn.execute(
                sa.select(EVENTS).where(EVENTS.c[C.EVENT_ID].in_([r[C.EVENT_ID] for r in rows]))
            ).mappings()
        }
        out = []
        for r in rows:
            old = stored.get(r[C.EVENT_ID])
            if old is not None and {**old, C.TIMESTAMP: _timestamp(old[C.TIMESTAMP])} != r:
                out.append(r[C.EVENT_ID])
        return out

    def rows_by_customer(self, customer_ids, id_type=str) -> dict:
        """Each customer's events as a sorted tuple of ``(offer_id, event, timestamp)`` rows,
        keyed by the customer id in the model's id type; customers without events are absent."""
        keys = [str(c) for c in customer_ids]
        if len(keys) == 1:
            rows = self._one_customer(keys[0])
        else:
            with self.engine.connect() as conn:
                rows = conn.execute(self._by_customers, {"ids": keys}).all()
        found: dict = {}
        for c, o, e, t in rows:
            found.setdefault(_as_id(c, id_type), []).append((_maybe_int(o), e, _timestamp(t)))
        return {c: tuple(sorted(r, key=lambda x: (x[2], str(x[0]), x[1]))) for c, r in found.items()}

    def _one_customer(self, key: str) -> list:
        """One customer's rows on this thread's own connection (opened on first use, closed
        when the thread ends or the connection fails); any error falls back to the pool.

        On SQLite, ``PRAGMA data_version`` tells whether any other connection has committed
        since this thread last looked: until one has, the rows read then are still the rows,
        and the thread answers from them without a query.
        """
        params = (key,) if self._one_positional else {"id": key}
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None:
            proxied = self.engine.raw_connection()
            conn = local.conn = proxied.driver_connection
            proxied.detach()  # this thread's own: not returned to the pool, closed with the thread
            local.version, local.rows = None, {}
        try:
            cursor = conn.cursor()
            try:
                if self._sqlite:
                    cursor.execute("PRAGMA data_version")
                    version = cursor.fetchone()[0]
                    if version != local.version:
                        local.version, local.rows = version, {}
                    found = local.rows.get(key)
                    if found is not None:
                        return found
                cursor.execute(self._one_sql, params)
                rows = cursor.fetchall()
            finally:
                cursor.close()
            if self._sqlite:
                if len(local.rows) >= ROWS_PER_THREAD:
                    local.rows = {}
                local.rows[key] = rows
            else:
                conn.rollback()  # end the read's transaction: nothing stays open between requests
            return rows
        except Exception:  # a broken connection (database restarted...): drop it, ask the pool
            local.conn = None
            with contextlib.suppress(Exception):
                conn.close()
            with self.engine.connect() as pooled:
                return pooled.execute(self._by_customers, {"ids": [key]}).all()

    def ping(self) -> None:
        """Raise when the store cannot be reached."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def after_fork(self) -> None:
        """In a forked worker: drop the connections inherited from the parent without closing
        them (they are the parent's), so this process opens its own."""
        self.engine.dispose(close=False)
        self._local = threading.local()

    def frame(self) -> pd.DataFrame:
        """Every event, as the data contract's offer_events table (for the next training)."""
        with self.engine.connect() as conn:
            return pd.read_sql(sa.select(EVENTS), conn)


class EventConflict(RecsysError):
    """Events whose ``event_id`` names another payload: nothing of the request was stored."""

    def __init__(self, event_ids: list[str], why: str):
        self.event_ids = list(dict.fromkeys(event_ids))
        shown = ", ".join(repr(i) for i in self.event_ids[:5])
        super().__init__(f"event_id {shown}{' and others' if len(self.event_ids) > 5 else ''}: {why}")


class EventStoreBusy(RecsysError):
    """Another writer holds the store: try again shortly (nothing was stored)."""


class EventStoreUnavailable(RecsysError):
    """The store cannot be reached (nothing was stored)."""


@contextlib.contextmanager
def _store_errors():
    """A database busy with another writer as EventStoreBusy, one out of reach as
    EventStoreUnavailable."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        text = str(exc.orig).lower()
        if "locked" in text or "busy" in text:
            raise EventStoreBusy(f"the events store is busy with another writer: {exc.orig}") from None
        raise EventStoreUnavailable(f"the events store cannot be reached: {exc.orig}") from None


def _row(e: dict) -> dict:
    """An event as the table stores it: ids as text, the instant as naive UTC."""
    ts = pd.Timestamp(e[C.TIMESTAMP])
    ts = ts.tz_localize(None) if ts.tzinfo is None else ts.tz_convert("UTC").tz_localize(None)
    return {
        C.EVENT_ID: str(e[C.EVENT_ID]),
        C.CUSTOMER_ID: str(e[C.CUSTOMER_ID]),
        C.OFFER_ID: str(e[C.OFFER_ID]),
        C.EVENT: e[C.EVENT],
        C.TIMESTAMP: ts.to_pydatetime(),
        C.CAMPAIGN_ID: None if e.get(C.CAMPAIGN_ID) is None else str(e[C.CAMPAIGN_ID]),
        C.PROPENSITY: None if e.get(C.PROPENSITY) is None else float(e[C.PROPENSITY]),
    }


def _sqlite_wal(dbapi_connection, _record) -> None:
    """Write-ahead logging: the workers read while another worker stores events, without
    taking the database's file locks on every read; ``synchronous=NORMAL``, as SQLite advises
    for WAL: no flush per commit (1.5 ms a request), consistent through a crash of the service,
    the last commits lost on a power loss (docs/api.md)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _timestamp(v) -> datetime:
    """A timestamp as the driver returned it (SQLite: ISO text) as a naive datetime."""
    return v if isinstance(v, datetime) else datetime.fromisoformat(v)


def _as_id(v: str, id_type):
    """A stored customer id in the model's id type; text that is not of it stays text, as the
    service parses an id the model does not know (a new customer)."""
    try:
        return id_type(v)
    except ValueError:
        return v


def _maybe_int(v: str):
    try:
        return int(v)
    except ValueError:
        return v


def _add_missing_columns(engine) -> None:
    """A store made by an earlier version gains the columns added since (propensity)."""
    have = {c["name"] for c in sa.inspect(engine).get_columns(EVENTS.name)}
    with engine.begin() as conn:
        for column in EVENTS.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f"ALTER TABLE {EVENTS.name} ADD COLUMN {column.name} {kind}"))
