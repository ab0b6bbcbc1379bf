"""The transactions' pass of validation, a batch of rows at a time.

``recsys.data.validate.validate_tables`` checks the transactions through a ``LinesPass``: each
batch is coerced, checked against the value and row rules, and its references looked up, and
the problems of all batches are merged into those one pass over the whole table finds (the same
rows, counts and first examples). A frame in memory is one batch. A Parquet source too large
for memory is read in batches of ``BATCH_ROWS`` (``parquet_batches``), and each validated batch
goes to a sink (``recsys.data.line_file.LineFileWriter``) instead of staying in memory: the
lines are then never held whole, at a hundred times The Complete Journey 8 GiB as one frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.data import contract as K
from recsys.data.issues import MAX_ROWS, Collector, examples
from recsys.data.references import unknown_references
from recsys.data.table_checks import check_shape, check_table_rules, check_values, coerce_table, finalise_ids
from recsys.errors import DataValidationError, Issue

BATCH_ROWS = 2_000_000  # rows per batch of a Parquet source: about 0.3 GiB of transient memory


def parquet_batches(path: str | Path, rows: int | None = None) -> Iterator[pd.DataFrame]:
    """A Parquet file's (or dataset directory's files') rows as frames of at most ``rows``
    (default BATCH_ROWS), in order; one empty frame with the columns when there is no row. A
    file that cannot be read raises DataValidationError naming it."""
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    path, rows = Path(path), rows or BATCH_ROWS
    try:
        files = [path] if path.is_file() else [Path(f) for f in pads.dataset(str(path), format="parquet").files]
        seen = False
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=rows):
                if batch.num_rows:
                    seen = True
                    yield batch.to_pandas(split_blocks=True)
        if not seen:
            yield pq.read_schema(files[0]).empty_table().to_pandas() if files else pd.DataFrame()
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataValidationError([Issue(C.TRANSACTIONS, None, f"cannot read {path.name}: {exc}")]) from None


def merge_issues(issues: list[Issue]) -> list[Issue]:
    """Issues found batch by batch, one per problem: rows summed, the first examples and rows of
    the batches in order (those a pass over the whole table finds)."""
    merged: dict[tuple, list[Issue]] = {}
    for i in issues:
        merged.setdefault((i.table, i.column, i.problem, i.severity, i.example_label), []).append(i)
    out = []
    for same in merged.values():
        first = same[0]
        if len(same) == 1:
            out.append(first)
            continue
        rows = tuple(r for i in same for r in i.rows)[:MAX_ROWS]
        out.append(
            Issue(
                first.table,
                first.column,
                first.problem,
                sum(i.n_rows for i in same),
                examples(v for i in same for v in i.examples),
                first.severity,
                first.example_label,
                rows,
            )
        )
    return out


class LinesPass:
    """Validates the transactions batch by batch (see the module): ``run`` takes the batches and
    the other tables' coerced frames; then ``shape``, ``coerced``, ``values`` and ``rules`` hold
    the problems of each step, ``unknown`` the unknown references, ``customers`` every customer
    id once, ``like`` an empty frame of the validated dtypes and ``frame`` the validated table
    when it was kept (no sink)."""

    def __init__(self, *, from_text: bool, now: pd.Timestamp, sink: Callable[[pd.DataFrame], None] | None = None):
        self.from_text, self.now, self.sink = from_text, now, sink
        self.shape, self.coerced, self.values, self.rules = Collector(), Collector(), Collector(), Collector()
        self.unknown: dict = {}
        self.customers = np.array([], dtype=object)
        self.like: pd.DataFrame | None = None
        self.frame: pd.DataFrame | None = None
        self.rows = 0

    @property
    def ok(self) -> bool:
        """Every batch coerced: the table's values were checked."""
        return not self.shape.issues and not self.coerced.errors() and self.like is not None

    def run(self, batches: Iterable[pd.DataFrame], frames: dict[str, pd.DataFrame]) -> LinesPass:
        spec = K.SPECS[C.TRANSACTIONS]
        customers, kept = [], []
        for batch in batches:
            if self.rows == 0 and not check_shape(C.TRANSACTIONS, batch, spec, self.shape):
                return self  # the columns are every batch's: the first says it all
            df = coerce_table(
                C.TRANSACTIONS,
                batch,
                spec,
                from_text=self.from_text,
                list_id_kind="int",
                out=self.coerced,
                offset=self.rows,
                shape=False,
            )
            self.rows += len(batch)
            del batch
            if df is None or self.coerced.errors():
                continue  # the rest is coerced for its problems only
            errors = len(self.values.errors())
            check_values(C.TRANSACTIONS, df, spec, self.now, self.values)
            if len(self.values.errors()) == errors:
                check_table_rules(C.TRANSACTIONS, df, self.rules)
            unknown_references({**frames, C.TRANSACTIONS: df}, C.TRANSACTIONS, self.unknown)
            customers.append(pd.unique(df[C.CUSTOMER_ID].to_numpy()))
            customers = [pd.unique(np.concatenate(customers))]
            df = finalise_ids(df, spec)
            self.like = df.iloc[:0] if self.like is None else self.like
            if self.sink is None:
                kept.append(df)
            else:
                self.sink(df)
        self.customers = customers[0] if customers else self.customers
        if kept:
            self.frame = kept[0] if len(kept) == 1 else pd.concat(kept)
        for step in (self.coerced, self.values, self.rules):
            step.issues = merge_issues(step.issues)
        if self.values.errors():
            self.rules.issues = []  # as for any table: its row rules are checked once its values pass
        return self
