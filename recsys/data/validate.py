"""Validate raw tables against the data contract and return canonical frames.

Three passes, each collecting every problem before anything is raised:
1. shape: required tables and columns, empty tables, types that cannot be coerced;
2. values: nulls, duplicate keys, allowed values, ranges, future instants, date order
   (pandera schemas built from recsys.data.contract);
3. references between tables (unknown products, offers, customers).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from recsys import constants as C
from recsys.data import contract as K
from recsys.data.coerce import coerce_column, id_kind
from recsys.data.issues import Collector as _Collector
from recsys.data.issues import examples as _examples
from recsys.data.issues import issue as _issue
from recsys.data.references import check_id_kinds, check_references
from recsys.errors import DataValidationError, Issue

logger = logging.getLogger(__name__)

# Instants this far past "now" count as future (clock skew between systems).
FUTURE_TOLERANCE = pd.Timedelta(days=1)


def _value_schema(spec: K.TableSpec, now: pd.Timestamp) -> pa.DataFrameSchema:
    """Pandera schema for the value rules of a table whose columns are already coerced."""
    columns = {}
    for col in spec.columns:
        checks = []
        if col.allowed is not None and col.kind == K.TEXT:
            checks.append(pa.Check.isin(list(col.allowed), error=f"is not one of {', '.join(col.allowed)}"))
        if col.allowed is not None and col.kind == K.TEXT_LIST:
            allowed = set(col.allowed)
            checks.append(
                pa.Check(
                    lambda s, allowed=allowed: s.map(lambda v: v is None or set(v) <= allowed),
                    element_wise=False,
                    error=f"names values outside {', '.join(col.allowed)}",
                )
            )
        if col.min_value is not None:
            checks.append(pa.Check.ge(col.min_value, error=f"is below the minimum {col.min_value:g}"))
        if col.max_value is not None:
            checks.append(pa.Check.le(col.max_value, error=f"is above the maximum {col.max_value:g}"))
        if col.not_future:
            checks.append(
                pa.Check.le(now + FUTURE_TOLERANCE, error=f"is in the future (after {now:%Y-%m-%d %H:%M} UTC)")
            )
        columns[col.name] = pa.Column(
            checks=checks,
            nullable=col.nullable,
            unique=col.unique,
            required=False,
            coerce=False,
        )
    return pa.DataFrameSchema(columns, strict=False, unique_column_names=True)


_PANDERA_PROBLEMS = {
    "not_nullable": "is empty (null) where a value is required",
    "field_uniqueness": "has duplicate values where each must be unique",
}


def _check_values(name: str, df: pd.DataFrame, spec: K.TableSpec, now: pd.Timestamp, out: _Collector) -> None:
    schema = _value_schema(spec, now)
    try:
        schema.validate(df, lazy=True, inplace=True)  # checks only: no copy of the table
    except SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        for (column, check), group in cases.groupby(["column", "check"], sort=False):
            problem = _PANDERA_PROBLEMS.get(check, check)
            index = pd.Index(group["index"].astype(int).unique())
            values = df.loc[df.index.isin(index), column]
            if check == "not_nullable":
                values = pd.Series([None] * len(values), index=values.index, dtype=object)
            out.add(_issue(name, column, problem, values))


def _check_table_rules(name: str, df: pd.DataFrame, out: _Collector) -> None:
    """Rules across columns of one row."""
    if name == C.OFFERS:
        bad = df[df[C.END_DATE] < df[C.START_DATE]]
        if len(bad):
            out.add(_issue(name, C.END_DATE, "is before start_date", bad[C.OFFER_ID], label="offer_id"))
        if C.PRODUCT_IDS in df and C.CATEGORY in df:
            both = df[df[C.PRODUCT_IDS].notna() & df[C.CATEGORY].notna()]
            if len(both):
                out.add(
                    _issue(
                        name,
                        C.PRODUCT_IDS,
                        "and category are both set; an offer targets one or the other",
                        both[C.OFFER_ID],
                        label="offer_id",
                    )
                )
        if C.MIN_CHURN_RISK in df and C.MAX_CHURN_RISK in df:
            bad = df[df[C.MIN_CHURN_RISK] > df[C.MAX_CHURN_RISK]]
            if len(bad):
                out.add(_issue(name, C.MIN_CHURN_RISK, "is above max_churn_risk", bad[C.OFFER_ID], label="offer_id"))
        pct = df[(df[C.OFFER_TYPE] == "percent_off") & ((df[C.VALUE] <= 0) | (df[C.VALUE] > 100))]
        if len(pct):
            out.add(
                _issue(name, C.VALUE, "of a percent_off offer must be in (0, 100]", pct[C.OFFER_ID], label="offer_id")
            )
    if name == C.TRANSACTIONS:
        bad = df[(df[C.AMOUNT] < 0) & (df[C.QUANTITY] > 0)]
        if len(bad):
            out.add(_issue(name, C.AMOUNT, "is negative on a purchase (quantity > 0)", bad[C.AMOUNT]))
        bad = df[(df[C.QUANTITY] < 0) & (df[C.AMOUNT] > 0)]
        if len(bad):
            out.add(_issue(name, C.QUANTITY, RETURN_SIGNS, bad[C.QUANTITY]))


RETURN_SIGNS = "is negative with a positive amount (a return has both negative)"


def _coerce_table(
    name: str, raw: pd.DataFrame, spec: K.TableSpec, *, from_text: bool, list_id_kind: str, out: _Collector
) -> pd.DataFrame | None:
    if len(raw.columns) != len(set(raw.columns)):
        dup = raw.columns[raw.columns.duplicated()].tolist()
        out.add(Issue(name, None, "has duplicate column names", len(dup), _examples(dup)))
        return None
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        hint = raw.attrs.get("separator_hint")
        for column in missing:
            out.add(Issue(name, column, "required column is missing" + (f" ({hint})" if hint else "")))
        return None
    if len(raw) == 0:
        if spec.empty_is_error:
            out.add(Issue(name, None, "table is empty"))
        else:
            out.add(Issue(name, None, "table is empty; treated as absent", severity="warning"))
        return None
    df = raw.reset_index(drop=True)  # copy-on-write: a coerced column replaces, never edits, the raw one
    ok = True
    for col in spec.columns:
        if col.name not in df.columns:
            continue
        values, bad, problem = coerce_column(df[col.name], col, from_text=from_text, list_id_kind=list_id_kind)
        if problem:
            out.add(_issue(name, col.name, problem, df.loc[bad, col.name]))
            ok = False
        else:
            df[col.name] = values
    return df if ok else None


def _finalise_ids(df: pd.DataFrame, spec: K.TableSpec) -> pd.DataFrame:
    """After validation, id columns without nulls become plain int64."""
    for col in spec.columns:
        if col.kind == K.ID and col.name in df and str(df[col.name].dtype) == "Int64" and not df[col.name].isna().any():
            df[col.name] = df[col.name].astype("int64")
    return df


def validate_tables(
    raw: Mapping[str, pd.DataFrame],
    *,
    text_tables: frozenset[str] = frozenset(),
    strict: bool = False,
    now: pd.Timestamp | None = None,
    partial: bool = False,
) -> tuple[dict[str, pd.DataFrame], list[Issue]]:
    """Validate raw tables; return canonical frames and the warnings.

    With ``partial`` no table is required (e.g. checking an offer catalog on its own).

    ``text_tables`` names the tables read from untyped text (CSV), whose integer-looking ids
    become integers. With ``strict`` warnings count as errors. Raises DataValidationError
    listing every problem.
    """
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else pd.Timestamp(now)
    out = _Collector()
    unknown = sorted(set(raw) - set(K.SPECS))
    if unknown:
        logger.info("ignoring tables outside the data contract: %s", ", ".join(unknown))
    for spec in K.SPECS.values():
        if spec.required and spec.name not in raw and not partial:
            out.add(Issue(spec.name, None, "required table is missing"))

    frames: dict[str, pd.DataFrame] = {}
    order = [t for t in K.SPECS if t in raw and t != C.OFFERS] + ([C.OFFERS] if C.OFFERS in raw else [])
    for name in order:
        list_kind = "int"
        if name == C.OFFERS:
            ref = frames.get(C.PRODUCTS, frames.get(C.TRANSACTIONS))
            list_kind = id_kind(ref[C.PRODUCT_ID]) if ref is not None else ("str" if name in text_tables else "int")
        df = _coerce_table(
            name, raw[name], K.SPECS[name], from_text=name in text_tables, list_id_kind=list_kind, out=out
        )
        if df is not None:
            frames[name] = df

    if not check_id_kinds(frames, out):
        raise DataValidationError(out.issues)
    for name, df in frames.items():
        before = len(out.errors())
        _check_values(name, df, K.SPECS[name], now, out)
        if len(out.errors()) == before:
            _check_table_rules(name, df, out)
    if not out.errors():
        check_references(frames, out)

    errors = out.issues if strict else out.errors()
    if errors:
        raise DataValidationError(errors if not strict else out.issues)
    for issue in out.warnings():
        logger.info("%s", issue)
    return {name: _finalise_ids(df, K.SPECS[name]) for name, df in frames.items()}, out.warnings()


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
