"""The third validation pass: ids of one kind across tables, and references to known ids
(unknown products, offers, customers)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.data import contract as K
from recsys.data.coerce import id_kind
from recsys.data.issues import MAX_ROWS, Collector, examples
from recsys.errors import Issue


def _id_kinds(frames: Mapping[str, pd.DataFrame], column: str) -> dict[str, str]:
    return {t: id_kind(df[column]) for t, df in frames.items() if column in df.columns}


def check_id_kinds(frames: Mapping[str, pd.DataFrame], out: Collector) -> bool:
    ok = True
    for column in (C.CUSTOMER_ID, C.PRODUCT_ID, C.OFFER_ID):
        kinds = _id_kinds(frames, column)
        if len(set(kinds.values())) > 1:
            detail = ", ".join(f"{'integer' if k == 'int' else 'string'} in {t}" for t, k in kinds.items())
            out.add(Issue(next(iter(kinds)), column, f"ids have different types across tables ({detail})"))
            ok = False
    return ok


def _known_ids(target: str, frames: Mapping[str, pd.DataFrame], for_table: str, line_customers=None) -> pd.Index | None:
    if target not in frames:
        return None
    key = K.SPECS[target].key
    known = pd.Index(frames[target][key].unique())
    if target == C.CUSTOMERS and for_table == C.OFFER_EVENTS:
        if line_customers is None and C.TRANSACTIONS in frames:
            line_customers = frames[C.TRANSACTIONS][C.CUSTOMER_ID].unique()
        if line_customers is not None:
            known = known.union(pd.Index(line_customers))
    return known


class Unknown:
    """The values of one reference column that name no row of its target, gathered over the
    batches of a table (recsys.data.batches): each value once in order, the rows, the first rows."""

    def __init__(self, ref: K.Reference):
        self.ref, self.values, self.n_rows, self.rows = ref, [], 0, []

    def add(self, unknown: pd.Series) -> None:
        if not len(unknown):
            return
        self.values.append(pd.unique(unknown.to_numpy()))
        self.values = [pd.unique(np.concatenate(self.values))] if len(self.values) > 1 else self.values
        self.n_rows += len(unknown)
        if len(self.rows) < MAX_ROWS and pd.api.types.is_integer_dtype(unknown.index.dtype):
            self.rows.extend(int(i) for i in unknown.index[: MAX_ROWS - len(self.rows)])

    def issue(self) -> Issue | None:
        if not self.n_rows:
            return None
        ref, values = self.ref, self.values[0]
        noun = f"{len(values)} unknown {ref.target[:-1] if ref.target.endswith('s') else ref.target}"
        noun += "s" if len(values) != 1 else ""
        return Issue(
            ref.table,
            ref.column,
            f"names {noun} ({ref.why})",
            self.n_rows,
            examples(values),
            ref.severity,
            "",
            tuple(self.rows),
        )


def unknown_references(
    frames: Mapping[str, pd.DataFrame], table: str, found: dict | None = None, line_customers=None
) -> dict[tuple[str, str], Unknown]:
    """The unknown values of ``table``'s references in ``frames``, added to ``found`` (by table
    and column) when given: a table read in batches gathers them batch by batch."""
    found = {} if found is None else found
    for ref in K.REFERENCES:
        if ref.table != table or table not in frames or ref.column not in frames[table].columns:
            continue
        known = _known_ids(ref.target, frames, ref.table, line_customers)
        if known is None:
            continue
        values = frames[table][ref.column]
        if ref.column == C.PRODUCT_IDS:
            values = values.dropna().explode()
        found.setdefault((ref.table, ref.column), Unknown(ref)).add(values[~values.isin(known)])
    return found


def check_references(
    frames: Mapping[str, pd.DataFrame], out: Collector, lines: dict | None = None, line_customers=None
) -> None:
    """Unknown ids, in the contract's order of references; ``lines``: the transactions'
    unknown values gathered batch by batch (their frame is then not in ``frames``), and
    ``line_customers`` their customers."""
    gathered = dict(lines or {})
    for table in {ref.table for ref in K.REFERENCES} - ({C.TRANSACTIONS} if lines is not None else set()):
        unknown_references(frames, table, gathered, line_customers)
    for ref in K.REFERENCES:
        present = ref.table in frames or (ref.table == C.TRANSACTIONS and lines is not None)
        if not present or (ref.table in frames and ref.column not in frames[ref.table].columns):
            continue
        if ref.target not in frames:
            if ref.severity == "error":
                out.add(Issue(ref.table, ref.column, f"names {ref.target} but the {ref.target} table is absent"))
            continue
        found = gathered.get((ref.table, ref.column))
        if found is not None and (issue := found.issue()) is not None:
            out.add(issue)
    offers = frames.get(C.OFFERS)
    products = frames.get(C.PRODUCTS)
    if offers is not None and products is not None and C.CATEGORY in offers and C.CATEGORY in products:
        cats = offers[C.CATEGORY].dropna()
        unknown = cats[~cats.isin(products[C.CATEGORY].dropna().unique())]
        if len(unknown):
            out.add(issue(C.OFFERS, C.CATEGORY, "names categories no product has", unknown, "warning"))
