"""Validate raw tables against the data contract and return canonical frames.

Three passes, each collecting every problem before anything is raised:
1. shape: required tables and columns, empty tables, types that cannot be coerced;
2. values: nulls, duplicate keys, allowed values, ranges, future instants, date order
   (pandera schemas built from recsys.data.contract);
3. references between tables (unknown products, offers, customers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

import pandas as pd

from recsys import constants as C
from recsys.data import contract as K
from recsys.data.batches import LinesPass
from recsys.data.coerce import id_kind
from recsys.data.issues import Collector as _Collector
from recsys.data.references import check_id_kinds, check_references
from recsys.data.table_checks import check_table_rules, check_values, coerce_table, finalise_ids
from recsys.errors import DataValidationError, Issue

logger = logging.getLogger(__name__)


def validate_tables(
    raw: Mapping[str, pd.DataFrame],
    *,
    text_tables: frozenset[str] = frozenset(),
    strict: bool = False,
    now: pd.Timestamp | None = None,
    partial: bool = False,
    batches: Iterable[pd.DataFrame] | None = None,
    sink: Callable[[pd.DataFrame], None] | None = None,
) -> tuple[dict[str, pd.DataFrame], list[Issue]]:
    """Validate raw tables; return canonical frames and the warnings.

    With ``partial`` no table is required (e.g. checking an offer catalog on its own).

    ``text_tables`` names the tables read from untyped text (CSV), whose integer-looking ids
    become integers. With ``strict`` warnings count as errors. Raises DataValidationError
    listing every problem.

    ``batches``: the transactions as frames of consecutive rows instead of ``raw``'s, each
    handed to ``sink`` once validated (recsys.data.batches): the problems are those of the whole
    table, and the transactions are not among the frames returned.
    """
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else pd.Timestamp(now)
    out = _Collector()
    unknown = sorted(set(raw) - set(K.SPECS))
    if unknown:
        logger.info("ignoring tables outside the data contract: %s", ", ".join(unknown))
    present = set(raw) | ({C.TRANSACTIONS} if batches is not None else set())
    for spec in K.SPECS.values():
        if spec.required and spec.name not in present and not partial:
            out.add(Issue(spec.name, None, "required table is missing"))

    frames, lines = _coerce(raw, present, text_tables, now, batches, sink, out)
    kinds = ({C.TRANSACTIONS: lines.like} if lines is not None and lines.ok else {}) | frames
    if not check_id_kinds(kinds, out):
        raise DataValidationError(out.issues)
    if lines is not None and lines.ok:
        out.issues.extend(lines.values.issues + lines.rules.issues)
    for name, df in frames.items():
        before = len(out.errors())
        check_values(name, df, K.SPECS[name], now, out)
        if len(out.errors()) == before:
            check_table_rules(name, df, out)
    if not out.errors():
        check_references(
            frames, out, lines.unknown if lines is not None else None, lines.customers if lines is not None else None
        )

    errors = out.issues if strict else out.errors()
    if errors:
        raise DataValidationError(errors if not strict else out.issues)
    for issue in out.warnings():
        logger.info("%s", issue)
    validated = {name: finalise_ids(df, K.SPECS[name]) for name, df in frames.items()}
    if lines is not None and lines.frame is not None:
        validated = {C.TRANSACTIONS: lines.frame, **validated}
    return validated, out.warnings()


def _coerce(raw, present, text_tables, now, batches, sink, out: _Collector) -> tuple[dict, LinesPass | None]:
    """Every table coerced (the transactions through a LinesPass, which checks their values and
    references too, batch by batch), the problems added to ``out`` in the contract's order."""
    # in the contract's order, the offers last: their product ids take the products' kind
    order = [t for t in K.SPECS if t in present and t != C.OFFERS] + ([C.OFFERS] if C.OFFERS in raw else [])
    coerced = {name: _Collector() for name in order}
    frames: dict[str, pd.DataFrame | None] = {}

    def coerce(name: str, list_kind: str = "int") -> None:
        spec, text = K.SPECS[name], name in text_tables
        frames[name] = coerce_table(name, raw[name], spec, from_text=text, list_id_kind=list_kind, out=coerced[name])

    for name in (t for t in order if t not in (C.OFFERS, C.TRANSACTIONS)):
        coerce(name)
    lines = None
    if C.TRANSACTIONS in present:
        lines = LinesPass(from_text=C.TRANSACTIONS in text_tables, now=now, sink=sink if batches is not None else None)
        refs = {t: frames[t] for t in (C.PRODUCTS, C.CUSTOMERS) if frames.get(t) is not None}
        lines.run(batches if batches is not None else [raw[C.TRANSACTIONS]], refs)
        coerced[C.TRANSACTIONS].issues = lines.shape.issues + lines.coerced.issues
    if C.OFFERS in raw:
        ref = frames.get(C.PRODUCTS)
        ref = ref if ref is not None else (lines.like if lines is not None and lines.ok else None)
        coerce(
            C.OFFERS, id_kind(ref[C.PRODUCT_ID]) if ref is not None else ("str" if C.OFFERS in text_tables else "int")
        )
    for name in order:
        out.issues.extend(coerced[name].issues)
    return {name: frames[name] for name in order if frames.get(name) is not None}, lines


def validate_events(events: pd.DataFrame, offers: pd.DataFrame | None, now: pd.Timestamp | None = None) -> list[Issue]:
    """The problems of offer events on their own, by the same rules as a dataset's offer_events
    (column types, allowed values, no future instants, known offers): the service checks the
    events it is sent with this before storing any. Each issue's ``rows`` are positions in
    ``events``."""
    raw = {C.OFFER_EVENTS: events.reset_index(drop=True)}
    if offers is not None:
        raw[C.OFFERS] = offers
    try:
        validate_tables(raw, partial=True, now=now)
    except DataValidationError as exc:
        return [i for i in exc.issues if i.table == C.OFFER_EVENTS]
    return []
