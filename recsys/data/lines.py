"""Basket lines reduced in DuckDB: what every customer x product matrix is summed from.

A basket line is one row per (customer, product, basket) bought (returns left out), carrying
the basket's first moment, the sum of its amounts and its number of transaction lines (a
product scanned twice in a basket is one basket line of two). ``BasketLines.of(transactions)``
builds them once in a DuckDB database; ``pairs(as_of)`` then sums them per (customer, product)
strictly before any cut date, within ``RECSYS_DUCKDB_MEMORY`` (spilling to disk beyond it): a
cut's transient memory is its result, not a copy of the lines.

Large line sets live in a database file under a temporary directory (removed on ``close``); a
request's few lines live in memory. Lines on disk can ``release`` their connection between uses
(DuckDB's buffer pool, up to its memory limit, goes with it) and reopen it at the next query, so
a training holds one set of lines for every stage without holding their cache through the
model fits in between. Limits and why DuckDB: recsys.data.duck.
"""

from __future__ import annotations

import shutil
import weakref

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.data import duck
from recsys.data.duck import DuckSettings, connect, memory_connection, out_of_memory
from recsys.data.line_db import DATABASE, LineDatabase
from recsys.data.line_file import LineFile, line_frame

DAY_NS = 86_400 * 10**9


def _recent(days: float) -> str:
    """The condition on a line ``ts`` of being at most ``days`` old at the cut ``t.cut``."""
    return f"t.cut - ts <= {days * DAY_NS!r}"


class BasketLines:
    """Basket lines in a DuckDB table ``lines`` (c, p, b, ts, amount, n); see the module."""

    def __init__(self, db: LineDatabase, table: str, n: int):
        self._db, self._table, self.n = db, table, n
        self.directory = db.directory  # of the database file; None in memory
        self.start: int | None = None  # lines before this moment (nanoseconds) are not seen; None: all are
        self.end: int | None = None  # lines from this moment on are not seen; None: all are
        with db.use() as con:  # each column's type, read once: the id columns' decide how positions are joined
            self._types = {row[0]: row[1] for row in con.execute(f"DESCRIBE {table}").fetchall()}
        self._buyers: dict = {}  # recent_buyers per (start, cut, days): shared by the views (lines never change)
        self._cleanup = weakref.finalize(self, db.drop, table)

    def before(self, as_of) -> BasketLines:
        """The same lines seen only strictly before ``as_of`` (a view: nothing is copied; it is
        valid while these lines are open, and closing it closes nothing)."""
        end = pd.Timestamp(as_of).value
        return self._view(self.start, end if self.end is None else min(end, self.end))

    def since(self, start) -> BasketLines:
        """The same lines seen only from ``start`` on (a view, as :meth:`before`)."""
        first = pd.Timestamp(start).value
        return self._view(first if self.start is None else max(first, self.start), self.end)

    def _view(self, start: int | None, end: int | None) -> BasketLines:
        view = object.__new__(BasketLines)
        view.__dict__.update(self.__dict__)
        view.start, view.end, view._cleanup, view._owner = start, end, _nothing, self
        return view

    @classmethod
    def of(cls, transactions: pd.DataFrame | LineFile, settings: DuckSettings | None = None) -> BasketLines:
        frame = line_frame(transactions)
        returns_out = "WHERE q > 0" if "q" in frame else ""
        amount = "sum(amount)" if "amount" in frame else "0.0::DOUBLE"
        query = (
            f"SELECT c, p, b, min(ts) AS ts, {amount} AS amount, count(*)::INTEGER AS n "
            f"FROM frame {returns_out} GROUP BY c, p, b"
        )
        if len(frame) < duck.ON_DISK_FROM:
            db = LineDatabase(memory_connection().cursor(), None, None)
            table = f"lines_{id(frame):x}"
            _create(db.con, frame, table, query, "TEMP TABLE")
            return cls(db, table, len(frame))
        s = settings or DuckSettings.from_env()
        directory = duck.scratch_directory("recsys-lines-", s)
        try:
            db = LineDatabase(connect(s, directory, database=DATABASE), directory, s)
            _create(db.con, frame, "lines", query, "TABLE")
        except BaseException as e:
            shutil.rmtree(directory, ignore_errors=True)
            raised = out_of_memory(e, s, f"the basket lines of {len(frame):,} transaction lines")
            if raised is e:
                raise
            raise raised from e
        return cls(db, "lines", len(frame))

    def _sql(self, sql: str, within: str | None = None) -> str:
        """``sql`` with ``{t}`` and ``{baskets}`` the lines and baskets this view sees from its
        start (and, with ``within``, those of its rows that meet that condition)."""
        tables = {"t": self._table, "baskets": f"{self._table}_baskets"}
        conditions = [f"ts >= {self.start}"] * (self.start is not None) + [within] * (within is not None)
        if conditions:
            where = " AND ".join(conditions)
            tables = {k: f"(SELECT * FROM {v} WHERE {where})" for k, v in tables.items()}
        return sql.format(**tables)

    def _cut(self, as_of) -> int:
        if as_of is None:
            last = self.last()
            return 0 if last is None else last + 1
        return pd.Timestamp(as_of).value if self.end is None else min(pd.Timestamp(as_of).value, self.end)

    def _query(self, sql: str, as_of, con=None, within: str | None = None) -> dict[str, np.ndarray]:
        cut = self._cut(as_of)
        if con is not None:
            return con.execute(self._sql(sql, within), [cut]).fetchnumpy()
        with self._db.use() as own:  # one connection: its queries run one at a time
            return own.execute(self._sql(sql, within), [cut]).fetchnumpy()

    def pairs(
        self,
        as_of=None,
        *,
        half_life_days: float = 28.0,
        recent_days: float = 56.0,
        rows: pd.Index | None = None,
        columns: pd.Index | None = None,
        rows_only: bool = False,
    ) -> dict[str, np.ndarray]:
        """Per (customer, product) with lines strictly before ``as_of`` (None: every line):
        ``c``, ``p``, ``baskets`` (its lines), ``spend`` (each line's amount, at least 0),
        ``decayed`` (each line weighted
        0.5 ** (age in days / ``half_life_days``)) and ``recent`` (its lines at most
        ``recent_days`` old), the sums as float32. Ages are counted from ``as_of`` (None: from
        the last line). With ``rows`` and ``columns`` see :meth:`positioned`."""
        sql = (
            "SELECT c, p, count(*)::FLOAT AS baskets, sum(greatest(amount, 0))::FLOAT AS spend, "
            f"sum(pow(0.5, (t.cut - ts) / {half_life_days * DAY_NS!r}))::FLOAT AS decayed, "
            f"count(*) FILTER (WHERE {_recent(recent_days)})::FLOAT AS recent "
            "FROM {t}, (SELECT $1::BIGINT AS cut) t WHERE ts < t.cut GROUP BY c, p"
        )
        if rows is None:
            return self._query(sql, as_of)
        return self.positioned(sql, as_of, rows, columns, rows_only=rows_only)

    def recent_buyers(self, as_of=None, *, recent_days: float = 56.0) -> dict[str, np.ndarray]:
        """Per product: ``p`` and ``buyers``, the distinct customers with a line strictly before
        ``as_of`` and at most ``recent_days`` old (the customers whose :meth:`pairs` have
        ``recent`` > 0), counted over every customer.

        Kept per start, cut and ``recent_days`` for these lines and all their views, read-only: a
        training asks for the same past campaigns' cuts in each pass of redemption examples
        (the ranker's, and each evaluated campaign's), and each count reads every recent line."""
        key = (self.start, self._cut(as_of), float(recent_days))
        if key not in self._buyers:
            sql = (
                "SELECT p, count(DISTINCT c) AS buyers FROM {t}, (SELECT $1::BIGINT AS cut) t "
                f"WHERE ts < t.cut AND {_recent(recent_days)} GROUP BY p"
            )
            found = self._query(sql, key[1])  # the cut, found once (without as_of, by a query)
            for column in found.values():
                column.setflags(write=False)
            self._buyers[key] = found
        return self._buyers[key]

    def counts(
        self, as_of=None, *, rows: pd.Index | None = None, columns: pd.Index | None = None
    ) -> dict[str, np.ndarray]:
        """Per (customer, product) with lines strictly before ``as_of``: ``c``, ``p`` and
        ``baskets`` (float32), the interaction counts collaborative filtering fits on. With
        ``rows`` and ``columns`` see :meth:`positioned`."""
        sql = "SELECT c, p, count(*)::FLOAT AS baskets FROM {t} WHERE ts < $1 GROUP BY c, p"
        return self._query(sql, as_of) if rows is None else self.positioned(sql, as_of, rows, columns)

    def prices(self, as_of=None) -> pd.Series:
        """The mean amount of a purchased transaction line per product, over the lines strictly
        before ``as_of`` (a basket's lines of a product counted one by one, as the transactions
        hold them)."""
        got = self._query("SELECT p, sum(amount) / sum(n) AS price FROM {t} WHERE ts < $1 GROUP BY p", as_of)
        return pd.Series(got["price"], index=pd.Index(got["p"], name=C.PRODUCT_ID), name=C.AMOUNT)

    def ids(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct customers and products of the lines seen."""
        q = "SELECT DISTINCT {0} FROM {{t}} WHERE ts < $1"
        return self._query(q.format("c"), None)["c"], self._query(q.format("p"), None)["p"]

    def new_pairs(self, earlier: BasketLines) -> dict[str, np.ndarray]:
        """``c`` and ``p`` of the pairs this view buys and ``earlier`` (a view of the same lines)
        never does: an anti-join in DuckDB, no set of every earlier pair in memory."""
        since = f"ts >= {self.start} AND " if self.start is not None else ""
        before = f"ts >= {earlier.start} AND " if earlier.start is not None else ""
        sql = (
            f"SELECT DISTINCT c, p FROM {self._table} n WHERE {since}ts < $1 AND NOT EXISTS (SELECT 1 FROM "
            f"{self._table} o WHERE {before}o.ts < {earlier._cut(None)} AND o.c = n.c AND o.p = n.p)"
        )
        return self._query(sql, None)

    def positioned(
        self, sql: str, as_of, rows: pd.Index, columns: pd.Index, *, rows_only: bool = False
    ) -> dict[str, np.ndarray]:
        """The per-pair query ``sql`` (columns c, p, ...) with ``c`` and ``p`` the positions
        (int32) of its ids in ``rows`` and ``columns``, pairs of other ids left out, sorted by
        (c, p): a CSR matrix's entries in order. DuckDB joins and sorts them within its memory
        limit, so no sort and no id lookup of millions of pairs runs in Python's memory.

        ``rows_only``: the lines of other customers are left out before ``sql`` sums them, not
        after (the same result; faster when ``rows`` are a few of the customers, such as one
        campaign's recipients, slower when they are most of them)."""
        keys = {"_rows": rows, "_columns": columns}
        sides = {name: self._sides(col, ids) for col, (name, ids) in zip("cp", keys.items())}
        joins = " ".join(f"JOIN {name} ON s.{column} = {name}.{id_}" for name, (column, id_) in sides.items())
        wrapped = (
            "SELECT _rows.pos AS c, _columns.pos AS p, s.* EXCLUDE (c, p) "
            f"FROM ({sql}) s {joins} ORDER BY _rows.pos, _columns.pos"
        )
        cut = self._cut(as_of)
        column, id_ = sides["_rows"]
        within = f"{column} IN (SELECT {id_} FROM _rows)" if rows_only else None
        with self._db.use() as con:
            for name, ids in keys.items():
                con.register(name, pd.DataFrame({"id": ids.to_numpy(), "pos": np.arange(len(ids), dtype=np.int32)}))
            try:
                return self._query(wrapped, cut, con, within=within)
            finally:
                for name in keys:
                    con.unregister(name)

    def _sides(self, column: str, ids: pd.Index) -> tuple[str, str]:
        """``column`` and the registered ``id`` as they are compared: as they are when both are
        integers or neither is, as text otherwise (ids are kept as given)."""
        integer = self._types[column] in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT")
        same = integer == (ids.dtype.kind in "iu")
        return (column, "id") if same else (f"{column}::VARCHAR", "id::VARCHAR")

    def customer_baskets(self, as_of=None) -> dict[str, np.ndarray]:
        """Per customer with lines strictly before ``as_of``: ``c`` and ``baskets`` (distinct)."""
        return self._query("SELECT c, count(*) AS baskets FROM {baskets} WHERE ts < $1 GROUP BY c", as_of)

    def buyers(self, since) -> dict[str, np.ndarray]:
        """Per product bought after ``since`` (and before the view's end): ``p`` and ``buyers``
        (distinct customers)."""
        start = pd.Timestamp(since).value
        sql = f"SELECT p, count(DISTINCT c) AS buyers FROM {{t}} WHERE ts > {start} AND ts < $1 GROUP BY p"
        return self._query(sql, None)

    def first(self) -> int | None:
        """The first line's moment seen (integer nanoseconds); None without lines."""
        return self._bound("min")

    def last(self) -> int | None:
        """The last line's moment seen (integer nanoseconds); None without lines."""
        return self._bound("max")

    def _bound(self, which: str) -> int | None:
        end = "" if self.end is None else f"WHERE ts < {self.end}"
        with self._db.use() as con:
            return con.execute(self._sql(f"SELECT {which}(ts) FROM {{t}} {end}")).fetchall()[0][0]

    def release(self) -> None:
        """Close the connection of lines on disk until the next query reopens it: DuckDB's
        buffer pool (up to its memory limit) is freed with it. Lines in memory keep theirs."""
        self._db.release()

    def close(self) -> None:
        """Drop the lines and remove their database file."""
        self._cleanup()

    def __enter__(self) -> BasketLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _create(con, frame: pd.DataFrame, table: str, query: str, kind: str) -> None:
    """The lines ``table`` from ``frame``, and beside it ``{table}_baskets``: one row per basket
    (c, b, ts of its first line), which counts a customer's baskets before a date without
    deduplicating the lines again at each date."""
    duck.register(con, "frame", frame)
    con.execute(f"CREATE {kind} {table} AS {query}")
    duck.unregister(con, "frame", frame)
    con.execute(f"CREATE {kind} {table}_baskets AS SELECT c, b, min(ts) AS ts FROM {table} GROUP BY c, b")


def _nothing() -> None:
    """A view's close: the lines belong to the set it was cut from."""
