"""Purchase history reduced once, cut at any date: what customer features are computed from.

The customer features, the churn labels, BG/NBD's summary and the segmentation's department
shares read the transactions at many dates (eighteen churn snapshots, the training date, each
campaign's start). Filtering the raw lines at each date copies them each time: at ten times The
Complete Journey that is 14.7M lines, up to a gigabyte, per date. ``PurchaseHistory.of`` reduces
the lines once, in DuckDB (reading the lines in place, within ``RECSYS_DUCKDB_MEMORY``:
recsys.data.duck), to the few tables those features need, each sorted by time (ties by their
values, so one dataset gives one history), so a cut at a date is a slice:

- ``baskets``: one row per basket (customer, time of its first line, spend, spend of positive
  lines, spend of positive discounted lines);
- ``first_bought``: when each customer first bought each category (each product when products
  name no category);
- ``departments``: spend per customer, department and moment (all lines, and positive ones);
- ``events``: offer sends and redemptions (customer, time, redeemed).

They grow with baskets and with customer x category pairs, about a tenth of the lines on The
Complete Journey. A basket counts at its first line's time; the lines of one basket share it
on the data this was built for (docs/features.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.data.duck import reduce
from recsys.data.line_file import customer_dtype, line_frame


@dataclass(frozen=True)
class PurchaseHistory:
    baskets: pd.DataFrame  # customer_id, time, spend, positive, discounted; sorted by time
    first_bought: pd.DataFrame  # customer_id, first; sorted by first
    departments: pd.DataFrame | None  # customer_id, department, time, amount, positive; sorted by time
    events: pd.DataFrame | None  # customer_id, time, redeemed; sorted by time
    signup: pd.Series | None  # signup date per customer_id
    has_discount: bool
    breadth_of: str  # what first_bought counts: "category" or "product"

    @classmethod
    def of(
        cls, transactions, products=None, customers=None, offer_events=None, *, baskets_only: bool = False
    ) -> PurchaseHistory:
        """The history of ``transactions`` (a frame, or a LineFile of lines on disk; a
        PurchaseHistory is returned as it is). With
        ``baskets_only`` only the baskets are built (what labels and BG/NBD read)."""
        if isinstance(transactions, PurchaseHistory):
            return transactions
        tx = transactions
        has_discount = C.DISCOUNT in tx
        baskets = basket_table(tx, has_discount)
        if baskets_only:
            return cls(
                baskets,
                pd.DataFrame({C.CUSTOMER_ID: [], "first": pd.Series([], dtype="datetime64[ns]")}),
                None,
                None,
                None,
                has_discount,
                "none",
            )
        by_category = products is not None and C.CATEGORY in products
        first = _first_bought(tx, products if by_category else None)
        departments = _departments(tx, products) if products is not None and C.DEPARTMENT in products else None
        return cls(
            baskets,
            first,
            departments,
            _events(offer_events),
            _signup(customers),
            has_discount,
            "category" if by_category else "product",
        )

    @classmethod
    def read(
        cls, directory, *, like: pd.DataFrame | None = None, products=None, customers=None, offer_events=None
    ) -> PurchaseHistory:
        """The history whose tables ``recsys.customers.history_spark`` wrote to ``directory``,
        with the small parts (offer events, sign-up dates) from the local tables. ``like``: a
        frame whose ``customer_id`` dtype the tables take (the local lines', as validated)."""
        from pathlib import Path

        directory = Path(directory)
        meta = json.loads((directory / "history.json").read_text())
        tables = {name: _read_table(directory / f"{name}.parquet", like) for name in meta["tables"]}
        departments = tables.get("departments")
        if departments is not None and products is not None and C.DEPARTMENT in products:
            departments[C.DEPARTMENT] = departments[C.DEPARTMENT].astype(products[C.DEPARTMENT].dtype)
        order = {"baskets": "time", "first_bought": "first", "departments": "time"}
        # the local reduction keeps ties (same time and customer) in the lines' order; a cluster's
        # order is arbitrary: ties are ordered by their values, so one dataset gives one history
        tables = {n: _sorted(t, order[n], by_values=True) for n, t in tables.items()}
        return cls(
            tables["baskets"],
            tables["first_bought"],
            tables.get("departments"),
            _events(offer_events),
            _signup(customers),
            bool(meta["has_discount"]),
            meta["breadth_of"],
        )

    def baskets_before(self, as_of: pd.Timestamp) -> pd.DataFrame:
        return _cut(self.baskets, "time", as_of)

    def first_bought_before(self, as_of: pd.Timestamp) -> pd.DataFrame:
        return _cut(self.first_bought, "first", as_of)

    def departments_before(self, as_of: pd.Timestamp) -> pd.DataFrame | None:
        return None if self.departments is None else _cut(self.departments, "time", as_of)

    def events_before(self, as_of: pd.Timestamp) -> pd.DataFrame | None:
        return None if self.events is None else _cut(self.events, "time", as_of)

    def between(self, start: pd.Timestamp, end: pd.Timestamp, *, right_closed: bool = False) -> pd.DataFrame:
        """Baskets with ``start < time <= end`` (``right_closed``) or ``start <= time < end``."""
        t = self.baskets["time"]
        side = ("right", "right") if right_closed else ("left", "left")
        lo, hi = t.searchsorted(start, side=side[0]), t.searchsorted(end, side=side[1])
        return self.baskets.iloc[lo:hi]


def _signup(customers: pd.DataFrame | None) -> pd.Series | None:
    if customers is None or C.SIGNUP_DATE not in customers:
        return None
    return customers.set_index(C.CUSTOMER_ID)[C.SIGNUP_DATE]


def _cut(frame: pd.DataFrame, column: str, as_of) -> pd.DataFrame:
    """The rows strictly before ``as_of`` of a frame sorted by ``column``: a slice, not a copy."""
    return frame.iloc[: int(frame[column].searchsorted(pd.Timestamp(as_of), side="left"))]


def _sorted(frame: pd.DataFrame, column: str, *, by_values: bool = False) -> pd.DataFrame:
    keys = [column, C.CUSTOMER_ID]
    if by_values:
        keys += [c for c in frame.columns if c not in keys]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _read_table(path, like: pd.DataFrame | None) -> pd.DataFrame:
    """A table the cluster wrote, in the local reduction's types: timestamps naive UTC in
    nanoseconds (from timestamps or integer nanoseconds), ids in the local lines' dtype."""
    frame = pd.read_parquet(path)
    for name in frame.columns:
        col = frame[name]
        if name in ("time", "first") and pd.api.types.is_integer_dtype(col.dtype):
            col = pd.to_datetime(col, unit="ns")  # nanoseconds, as Spark read them from pandas' Parquet
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            frame[name] = col.astype("datetime64[ns]")
    if like is not None and C.CUSTOMER_ID in like:
        frame[C.CUSTOMER_ID] = frame[C.CUSTOMER_ID].astype(customer_dtype(like))
    return frame


def basket_table(tx: pd.DataFrame, has_discount: bool = False) -> pd.DataFrame:
    """One row per basket (``customer_id, time, spend, positive`` and with ``has_discount``
    ``discounted``), sorted by time. Without ``basket_id`` a basket is a customer's lines
    sharing one timestamp."""
    frame = line_frame(tx, discount=has_discount)
    amount = "amount" if "amount" in frame else "0.0"  # visits alone (BG/NBD)
    discounted = f", sum(CASE WHEN d > 0 THEN greatest({amount}, 0) ELSE 0 END) AS discounted" if has_discount else ""
    sql = (
        f"SELECT c AS {C.CUSTOMER_ID}, min(ts) AS time, sum({amount})::DOUBLE AS spend, "
        f"sum(greatest({amount}, 0))::DOUBLE AS positive{discounted} FROM frame GROUP BY c, b"
    )
    return _typed(reduce(sql, {"frame": frame}, f"the baskets of {len(tx):,} lines"), tx, "time")


def _first_bought(tx: pd.DataFrame, products: pd.DataFrame | None) -> pd.DataFrame:
    """When each customer first bought each category (each product without categories)."""
    frames = {"frame": line_frame(tx)}
    if products is None:
        sql = f"SELECT c AS {C.CUSTOMER_ID}, min(ts) AS first FROM frame GROUP BY c, p"
    else:
        frames["attribute"] = _attribute(products, C.CATEGORY)[0]
        sql = f"SELECT c AS {C.CUSTOMER_ID}, min(ts) AS first FROM frame JOIN attribute USING (p) GROUP BY c, a"
    return _typed(reduce(sql, frames, f"the first purchases of {len(tx):,} lines"), tx, "first")


def _departments(tx: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Spend per (customer, department, moment): all lines, and the positive ones."""
    attribute, names = _attribute(products, C.DEPARTMENT)
    sql = (
        f"SELECT c AS {C.CUSTOMER_ID}, a AS {C.DEPARTMENT}, ts AS time, sum(amount)::DOUBLE AS amount, "
        "sum(greatest(amount, 0))::DOUBLE AS positive FROM frame JOIN attribute USING (p) GROUP BY c, a, ts"
    )
    d = reduce(sql, {"frame": line_frame(tx), "attribute": attribute}, f"the department spend of {len(tx):,} lines")
    d[C.DEPARTMENT] = pd.Series(names[d[C.DEPARTMENT].to_numpy()], index=d.index).astype(products[C.DEPARTMENT].dtype)
    return _typed(d, tx, "time")


def _attribute(products: pd.DataFrame, column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """(p, a): each product's ``column`` (its first row's) as an integer code, for the products
    that name one; and the values by code. DuckDB groups by the code: grouping by text kept more
    than 512MB of keys at a hundred times The Complete Journey and could not spill them."""
    named = products.drop_duplicates(C.PRODUCT_ID)
    named = named[named[column].notna()]
    codes, names = pd.factorize(named[column])
    return pd.DataFrame({"p": named[C.PRODUCT_ID].to_numpy(), "a": codes.astype(np.int32)}), np.asarray(names)


def _typed(frame: pd.DataFrame, tx: pd.DataFrame, time: str) -> pd.DataFrame:
    """A reduction in the lines' types (customer ids as in ``tx``, times as nanosecond
    timestamps), sorted by ``time``, ties by their values: one dataset gives one table."""
    frame[C.CUSTOMER_ID] = frame[C.CUSTOMER_ID].astype(customer_dtype(tx))
    frame[time] = frame[time].to_numpy().astype("datetime64[ns]")
    return _sorted(frame, time, by_values=True)


def _events(offer_events: pd.DataFrame | None) -> pd.DataFrame | None:
    if offer_events is None or not len(offer_events):
        return None
    kind = offer_events[C.EVENT]
    keep = kind.isin(["sent", "redeemed"]).to_numpy()
    ev = pd.DataFrame(
        {
            C.CUSTOMER_ID: offer_events[C.CUSTOMER_ID].to_numpy()[keep],
            "time": offer_events[C.TIMESTAMP].to_numpy()[keep],
            "redeemed": (kind.to_numpy()[keep] == "redeemed").astype(np.bool_),
        }
    )
    return _sorted(ev, "time")
