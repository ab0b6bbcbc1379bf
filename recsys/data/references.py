"""The third validation pass: ids of one kind across tables, and references to known ids
(unknown products, offers, customers)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from recsys import constants as C
from recsys.data import contract as K
from recsys.data.coerce import id_kind
from recsys.data.issues import Collector, issue
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


def _known_ids(target: str, column: str, frames: Mapping[str, pd.DataFrame], for_table: str) -> pd.Index | None:
    if target not in frames:
        return None
    key = K.SPECS[target].key
    known = pd.Index(frames[target][key].unique())
    if target == C.CUSTOMERS and for_table == C.OFFER_EVENTS:
        known = known.union(pd.Index(frames[C.TRANSACTIONS][C.CUSTOMER_ID].unique()))
    return known


def check_references(frames: Mapping[str, pd.DataFrame], out: Collector) -> None:
    for ref in K.REFERENCES:
        if ref.table not in frames or ref.column not in frames[ref.table].columns:
            continue
        known = _known_ids(ref.target, ref.column, frames, ref.table)
        if known is None:
            if ref.severity == "error":
                out.add(Issue(ref.table, ref.column, f"names {ref.target} but the {ref.target} table is absent"))
            continue
        values = frames[ref.table][ref.column]
        if ref.column == C.PRODUCT_IDS:
            values = values.dropna().explode()
        unknown = values[~values.isin(known)]
        if len(unknown):
            noun = f"{len(unknown.unique())} unknown {ref.target[:-1] if ref.target.endswith('s') else ref.target}"
            noun += "s" if len(unknown.unique()) != 1 else ""
            out.add(issue(ref.table, ref.column, f"names {noun} ({ref.why})", unknown, ref.severity))
    offers = frames.get(C.OFFERS)
    products = frames.get(C.PRODUCTS)
    if offers is not None and products is not None and C.CATEGORY in offers and C.CATEGORY in products:
        cats = offers[C.CATEGORY].dropna()
        unknown = cats[~cats.isin(products[C.CATEGORY].dropna().unique())]
        if len(unknown):
            out.add(issue(C.OFFERS, C.CATEGORY, "names categories no product has", unknown, "warning"))
