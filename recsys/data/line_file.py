"""Validated transaction lines kept on disk: what a training reads when the lines are too many
to hold as a frame.

At a hundred times The Complete Journey the transactions are 147 million lines: 8 GiB as a
pandas frame, before any copy validation or a reduction makes. The training's load stage
therefore validates a Parquet source's lines a batch at a time (``recsys.data.batches``) and
writes each validated batch here, one Parquet file in canonical types. Every later reader
reduces the file in DuckDB, which reads Parquet as it reads a frame, with the same SQL
(:func:`line_frame` gives the file's lines, or a frame's, under the names the reductions read):
the basket lines, the purchase history, the buyers before a date, the lines of a few customers.
What the stages ask of the lines besides (their first and last moments, their customers, the
dataset's fingerprint) is computed as the batches are written and kept here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import constants as C

FILE = "transactions.parquet"


@dataclass(frozen=True)
class LineView:
    """The lines of a file under the names DuckDB's reductions read (c, b, ts, p, amount, q, d):
    a query registered as a view where a frame would be registered as a table."""

    sql: str
    columns: tuple[str, ...]
    rows: int

    def __len__(self) -> int:
        return self.rows

    def __contains__(self, column: str) -> bool:
        return column in self.columns


@dataclass(frozen=True)
class LineFile:
    """Validated transactions in one Parquet file (``path``), with what was learned writing it."""

    path: Path
    rows: int
    dtypes: dict  # the pandas dtype of each of the file's columns (contract names), as validated
    first: pd.Timestamp | None  # the first and last lines' moments (None: no line)
    last: pd.Timestamp | None
    customers: np.ndarray  # every customer id of the lines, once each
    products: int  # distinct product ids
    # the dataset fingerprint's digest after the transactions (recsys.data.dataset.Dataset.fingerprint)
    digest: object = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return self.rows

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.dtypes)

    def __contains__(self, column: str) -> bool:
        return column in self.dtypes

    def _source(self) -> str:
        return "read_parquet('" + str(self.path).replace("'", "''") + "')"

    def view(self, *, discount: bool = False) -> LineView:
        """The lines as ``line_frame`` names them: moments as integer nanoseconds, the basket id
        or, without one, the moment."""
        ts = f"epoch_ns({C.TIMESTAMP})"
        columns = {"c": C.CUSTOMER_ID, "b": C.BASKET_ID if C.BASKET_ID in self else ts, "ts": ts}
        if C.PRODUCT_ID in self:
            columns["p"] = C.PRODUCT_ID
        if C.AMOUNT in self:
            columns["amount"] = f"{C.AMOUNT}::DOUBLE"
        if C.QUANTITY in self:
            columns["q"] = C.QUANTITY
        if discount and C.DISCOUNT in self:
            columns["d"] = f"{C.DISCOUNT}::DOUBLE"
        select = ", ".join(f"{expr} AS {name}" for name, expr in columns.items())
        return LineView(f"SELECT {select} FROM {self._source()}", tuple(columns), self.rows)

    def buyers_before(self, as_of) -> int:
        """Customers with a line strictly before ``as_of``."""
        from recsys.data.duck import reduce

        sql = f"SELECT count(DISTINCT c) AS n FROM lines WHERE ts < {pd.Timestamp(as_of).value}"
        return int(reduce(sql, {"lines": self.view()}, "the buyers before a date")["n"].iloc[0])

    def baskets(self) -> int:
        """Distinct baskets (customer and basket id; the moment without basket ids)."""
        from recsys.data.duck import reduce

        sql = "SELECT count(*) AS n FROM (SELECT DISTINCT b FROM lines)"
        return int(reduce(sql, {"lines": self.view()}, "the baskets")["n"].iloc[0])

    def frame(self, customers=None) -> pd.DataFrame:
        """The lines as a validated frame: all of them, or those of ``customers`` (a few)."""
        filters = None if customers is None else [(C.CUSTOMER_ID, "in", list(customers))]
        table = pq.read_table(self.path, filters=filters)
        out = table.to_pandas(self_destruct=True, split_blocks=True)
        return out.astype({c: t for c, t in self.dtypes.items() if c in out and out[c].dtype != t})


def row_hashes(df: pd.DataFrame) -> bytes:
    """Each row's hash, in order: what a dataset's fingerprint digests (a table hashed in
    batches digests the same bytes)."""
    hashable = df.map(lambda v: repr(v) if isinstance(v, list) else v) if (df.dtypes == "object").any() else df
    return pd.util.hash_pandas_object(hashable, index=False).to_numpy().tobytes()


def time_span(lines) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The first and last moments of transaction lines: a frame's, or a LineFile's."""
    if isinstance(lines, LineFile):
        return lines.first, lines.last
    t = lines[C.TIMESTAMP]
    return (t.min(), t.max()) if len(t) else (None, None)


def customer_dtype(lines):
    """The dtype of the lines' customer ids (a frame's column, or a LineFile's as validated)."""
    return lines.dtypes[C.CUSTOMER_ID] if isinstance(lines, LineFile) else lines[C.CUSTOMER_ID].dtype


class LineFileWriter:
    """Writes validated batches to ``directory``/transactions.parquet and returns the LineFile
    (``close``): ``written`` names the columns kept in the file (default all); every column is
    in the fingerprint."""

    def __init__(self, directory: str | Path, written: tuple[str, ...] | None = None):
        self.path = Path(directory) / FILE
        self.written = written
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._dtypes: dict = {}
        self._digest = hashlib.sha256()
        self._rows, self._first, self._last = 0, None, None
        self._customers: list[np.ndarray] = []
        self._products: list[np.ndarray] = []

    def write(self, batch: pd.DataFrame) -> None:
        if self._writer is None:
            self._digest.update(C.TRANSACTIONS.encode())
            self._digest.update(",".join(map(str, batch.columns)).encode())
        self._digest.update(row_hashes(batch))
        kept = batch[[c for c in batch.columns if self.written is None or c in self.written]]
        table = pa.Table.from_pandas(kept, preserve_index=False, schema=self._schema)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = table.schema
            self._dtypes = dict(kept.dtypes)
            self._writer = pq.ParquetWriter(self.path, self._schema)
        self._writer.write_table(table)
        self._rows += len(batch)
        t = batch[C.TIMESTAMP]
        if len(t):
            lo, hi = t.min(), t.max()
            self._first = lo if self._first is None else min(self._first, lo)
            self._last = hi if self._last is None else max(self._last, hi)
        self._customers.append(pd.unique(batch[C.CUSTOMER_ID].to_numpy()))
        if C.PRODUCT_ID in batch:
            self._products.append(pd.unique(batch[C.PRODUCT_ID].to_numpy()))
        self._customers = [pd.unique(np.concatenate(self._customers))]
        self._products = [pd.unique(np.concatenate(self._products))] if self._products else []

    def close(self) -> LineFile:
        if self._writer is None:
            raise ValueError("no batch was written")
        self._writer.close()
        return LineFile(
            self.path,
            self._rows,
            self._dtypes,
            self._first,
            self._last,
            self._customers[0],
            len(self._products[0]) if self._products else 0,
            self._digest,
        )

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.path.unlink(missing_ok=True)


def line_frame(transactions: pd.DataFrame | LineFile, *, discount: bool = False) -> pd.DataFrame | LineView:
    """The columns of ``transactions`` DuckDB reads (c, p, b, ts, amount, q, and with
    ``discount`` d), without copying them: moments as integer nanoseconds (exact; DuckDB's own
    timestamps hold microseconds), the basket id or, without one, the moment; of a LineFile, a view."""
    if isinstance(transactions, LineFile):
        return transactions.view(discount=discount)
    ts = transactions[C.TIMESTAMP].to_numpy().astype("datetime64[ns]", copy=False).view("i8")
    basket = transactions[C.BASKET_ID].to_numpy() if C.BASKET_ID in transactions else ts
    columns = {
        "c": transactions[C.CUSTOMER_ID].to_numpy(),
        "b": basket,
        "ts": ts,
    }
    if C.PRODUCT_ID in transactions:  # baskets alone need none (BG/NBD reads visits)
        columns["p"] = transactions[C.PRODUCT_ID].to_numpy()
    if C.AMOUNT in transactions:  # counts alone need none (collaborative filtering reads no amounts)
        columns["amount"] = transactions[C.AMOUNT].to_numpy(np.float64)
    if C.QUANTITY in transactions:
        columns["q"] = transactions[C.QUANTITY].to_numpy()
    if discount and C.DISCOUNT in transactions:
        columns["d"] = transactions[C.DISCOUNT].to_numpy(np.float64)
    return pd.DataFrame(columns, copy=False)
