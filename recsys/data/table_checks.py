"""The checks of one table: coercion to the contract's kinds, value rules (pandera schemas built
from recsys.data.contract) and rules across the columns of a row. recsys.data.validate runs them
over every table, recsys.data.batches over the transactions a batch at a time."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from recsys import constants as C
from recsys.data import contract as K
from recsys.data.coerce import coerce_column
from recsys.data.issues import Collector as _Collector
from recsys.data.issues import examples as _examples
from recsys.data.issues import issue as _issue
from recsys.errors import Issue

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


def check_values(name: str, df: pd.DataFrame, spec: K.TableSpec, now: pd.Timestamp, out: _Collector) -> None:
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


def check_table_rules(name: str, df: pd.DataFrame, out: _Collector) -> None:
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


def coerce_table(
    name: str,
    raw: pd.DataFrame,
    spec: K.TableSpec,
    *,
    from_text: bool,
    list_id_kind: str,
    out: _Collector,
    offset: int = 0,
    shape: bool = True,
) -> pd.DataFrame | None:
    """The table with its columns coerced to their kinds, or None with the problems in ``out``.
    ``offset``: the position of its first row (a batch of a larger table); ``shape``: check the
    columns and emptiness first (a batch after the first shares the first's columns)."""
    if shape and not check_shape(name, raw, spec, out):
        return None
    df = raw.reset_index(drop=True)  # copy-on-write: a coerced column replaces, never edits, the raw one
    if offset:
        df.index = pd.RangeIndex(offset, offset + len(df))
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


def check_shape(name: str, raw: pd.DataFrame, spec: K.TableSpec, out: _Collector) -> bool:
    if len(raw.columns) != len(set(raw.columns)):
        dup = raw.columns[raw.columns.duplicated()].tolist()
        out.add(Issue(name, None, "has duplicate column names", len(dup), _examples(dup)))
        return False
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        hint = raw.attrs.get("separator_hint")
        for column in missing:
            out.add(Issue(name, column, "required column is missing" + (f" ({hint})" if hint else "")))
        return False
    if len(raw) == 0:
        if spec.empty_is_error:
            out.add(Issue(name, None, "table is empty"))
        else:
            out.add(Issue(name, None, "table is empty; treated as absent", severity="warning"))
        return False
    return True


def finalise_ids(df: pd.DataFrame, spec: K.TableSpec) -> pd.DataFrame:
    """After validation, id columns without nulls become plain int64."""
    for col in spec.columns:
        if col.kind == K.ID and col.name in df and str(df[col.name].dtype) == "Int64" and not df[col.name].isna().any():
            df[col.name] = df[col.name].astype("int64")
    return df
