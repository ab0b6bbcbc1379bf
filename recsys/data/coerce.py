"""Turn raw columns into canonical dtypes, reporting every value that does not fit.

Each function takes the raw column and returns ``(canonical_column, bad_mask, problem)``:
the rows of ``bad_mask`` hold values that could not be converted, described by ``problem``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from recsys.data import contract as K

_INT_LITERAL = re.compile(r"^-?(0|[1-9][0-9]*)$")
_NO_PROBLEM = ""

Coerced = tuple[pd.Series, pd.Series, str]


def _is_textual(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) or s.dtype == object


def _no_bad(s: pd.Series) -> pd.Series:
    return pd.Series(False, index=s.index)


def coerce_id(s: pd.Series, *, from_text: bool) -> Coerced:
    """Ids stay as given: integers become int64, anything else strings.

    Text sources (CSV) carry no types, so a text column whose every value is a plain
    integer literal (no sign, spaces or leading zeros) is read as integers; "007" stays
    a string so that it is written back exactly as given.
    """
    if pd.api.types.is_bool_dtype(s.dtype):
        return s, s.notna(), "is boolean, expected an integer or string id"
    if pd.api.types.is_integer_dtype(s.dtype):
        if s.isna().any():
            return s.astype("Int64"), _no_bad(s), _NO_PROBLEM
        return s.astype("int64"), _no_bad(s), _NO_PROBLEM
    if pd.api.types.is_float_dtype(s.dtype):
        bad = s.notna() & (s != np.floor(s))
        if bad.any():
            return s, bad, "is not a whole number, expected an integer or string id"
        return s.astype("Int64") if s.isna().any() else s.astype("int64"), bad, _NO_PROBLEM
    if _is_textual(s):
        text = s.map(lambda v: v if v is None or isinstance(v, str) or pd.isna(v) else str(v))
        text = text.astype("string").str.strip()
        text = text.mask(text == "")
        if from_text:
            present = text.dropna()
            if len(present) and present.str.fullmatch(_INT_LITERAL).all():
                ints = pd.to_numeric(text, errors="coerce")
                if ints.dropna().abs().max() < 2**63:
                    return ints.astype("Int64") if ints.isna().any() else ints.astype("int64"), _no_bad(s), _NO_PROBLEM
        return text, _no_bad(s), _NO_PROBLEM
    return s, s.notna(), f"has dtype {s.dtype}, expected an integer or string id"


def coerce_int(s: pd.Series) -> Coerced:
    num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s.dtype) else s
    num = num.astype("float64") if pd.api.types.is_bool_dtype(num.dtype) or num.dtype == object else num
    unparsed = s.notna() & num.isna()
    if unparsed.any():
        return s, unparsed, "is not a number"
    if not pd.api.types.is_integer_dtype(num.dtype) or num.dtype == "uint64":
        as_float = num.astype("float64")
        # 2**63 is exact in float64; anything at or past it cannot be an int64 (1e309 reads as inf)
        out_of_range = as_float.notna() & ((as_float >= 2.0**63) | (as_float < -(2.0**63)))
        if _is_textual(s):  # near the limits float64 rounds: decide those on the exact text
            near = as_float.notna() & ~out_of_range & (as_float.abs() >= 2.0**62)
            out_of_range |= near & s.map(lambda v: not _fits_int64(v))
        if out_of_range.any():
            return s, out_of_range, "is out of range for a 64-bit integer"
    fractional = num.notna() & (num != np.floor(num))
    if fractional.any():
        return s, fractional, "is not a whole number"
    return (num.astype("Int64") if num.isna().any() else num.astype("int64")), _no_bad(s), _NO_PROBLEM


def _fits_int64(text) -> bool:
    try:
        return -(2**63) <= int(str(text).strip()) < 2**63
    except ValueError:
        return True  # not an integer literal (e.g. 9.2e18): float64 decided it


def coerce_float(s: pd.Series) -> Coerced:
    num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s.dtype) else s
    num = num.astype("float64")
    unparsed = s.notna() & num.isna()
    if unparsed.any():
        return s, unparsed, "is not a number"
    infinite = np.isinf(num)
    if infinite.any():
        return s, infinite, "is infinite"
    return num, _no_bad(s), _NO_PROBLEM


OUTSIDE = f"is outside the representable dates ({pd.Timestamp.min:%Y}–{pd.Timestamp.max:%Y})"


def _outside_ns(out: pd.Series) -> pd.Series:
    """Instants a nanosecond timestamp cannot hold (pandas reads some at a coarser unit)."""
    return out.notna() & ((out < pd.Timestamp.min) | (out > pd.Timestamp.max))


def coerce_timestamp(s: pd.Series) -> Coerced:
    """Instants become naive UTC datetime64[ns]; text must be ISO 8601."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s
        if getattr(s.dt, "tz", None) is not None:
            out = s.dt.tz_convert("UTC").dt.tz_localize(None)
        outside = _outside_ns(out)
        if outside.any():
            return (
                s,
                outside,
                f"{OUTSIDE}; are the values in another unit than the column says (e.g. nanoseconds stored as "
                "milliseconds)?",
            )
        return out.astype("datetime64[ns]"), _no_bad(s), _NO_PROBLEM
    if _is_textual(s):
        text = s.astype("string").str.strip().mask(lambda t: t == "")
        try:
            out = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        except (ValueError, TypeError):
            out = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        unparsed = text.notna() & out.isna()
        if unparsed.any():
            return s, unparsed, "is not an ISO 8601 date or timestamp"
        out = out.dt.tz_localize(None)
        outside = _outside_ns(out)
        if outside.any():
            return s, outside, OUTSIDE
        return out.astype("datetime64[ns]"), _no_bad(s), _NO_PROBLEM
    return s, s.notna(), f"has dtype {s.dtype}, expected a date or timestamp"


def coerce_date(s: pd.Series) -> Coerced:
    out, bad, problem = coerce_timestamp(s)
    if problem:
        return out, bad, problem.replace("date or timestamp", "date")
    return out.dt.normalize(), bad, problem


def coerce_text(s: pd.Series) -> Coerced:
    if _is_textual(s) or pd.api.types.is_numeric_dtype(s.dtype):
        out = s.map(lambda v: v if v is None or isinstance(v, str) or pd.isna(v) else str(v))
        return out.astype("string"), _no_bad(s), _NO_PROBLEM
    return s, s.notna(), f"has dtype {s.dtype}, expected text"


def _parse_list(value: Any) -> list | None:
    """A list cell: a native list/array, a JSON array, or "a|b|c" text. Empty means none."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            items = json.loads(text)  # ValueError reaches the caller
            if not isinstance(items, list):
                raise ValueError("not a JSON array")
        else:
            items = [part.strip() for part in text.split("|")]
    elif pd.isna(value):
        return None
    else:
        items = [value]
    if any(item is None or (isinstance(item, str) and not item.strip()) for item in items):
        raise ValueError("empty item")
    return items or None


def _coerce_list(s: pd.Series, item: Callable[[Any], Any]) -> Coerced:
    out = []
    bad = np.zeros(len(s), dtype=bool)
    for i, value in enumerate(s.to_numpy(dtype=object)):
        try:
            items = _parse_list(value)
            out.append(None if items is None else [item(v) for v in items])
        except (ValueError, TypeError):
            bad[i] = True
            out.append(None)
    bad_mask = pd.Series(bad, index=s.index)
    if bad.any():
        return s, bad_mask, "is not a list (use a JSON array or values separated by |)"
    return pd.Series(out, index=s.index, dtype=object), bad_mask, _NO_PROBLEM


def _as_text_item(v: Any) -> str:
    if isinstance(v, (list, dict)):
        raise TypeError("nested")
    return str(v).strip()


def coerce_id_list(s: pd.Series, id_kind: str) -> Coerced:
    """Lists of ids whose items take the kind ("int" or "str") of the ids they name."""

    def item(v: Any) -> Any:
        if id_kind == "int":
            if isinstance(v, (bool, np.bool_)):
                raise TypeError("boolean id")
            if isinstance(v, str):
                if not _INT_LITERAL.fullmatch(v.strip()):
                    raise ValueError(v)
                return int(v)
            if float(v) != int(v):
                raise ValueError(v)
            return int(v)
        return _as_text_item(v)

    out, bad, problem = _coerce_list(s, item)
    if problem and id_kind == "int":
        problem = "is not a list of integer product ids (use a JSON array or ids separated by |)"
    return out, bad, problem


def coerce_text_list(s: pd.Series) -> Coerced:
    return _coerce_list(s, _as_text_item)


def id_kind(s: pd.Series) -> str:
    """'int' or 'str': the kind of a canonical id column."""
    return "int" if pd.api.types.is_integer_dtype(s.dtype) else "str"


def coerce_column(s: pd.Series, spec: K.ColumnSpec, *, from_text: bool, list_id_kind: str = "int") -> Coerced:
    if spec.kind == K.ID:
        return coerce_id(s, from_text=from_text)
    if spec.kind == K.INT:
        return coerce_int(s)
    if spec.kind == K.FLOAT:
        return coerce_float(s)
    if spec.kind == K.TIMESTAMP:
        return coerce_timestamp(s)
    if spec.kind == K.DATE:
        return coerce_date(s)
    if spec.kind == K.TEXT:
        return coerce_text(s)
    if spec.kind == K.ID_LIST:
        return coerce_id_list(s, list_id_kind)
    if spec.kind == K.TEXT_LIST:
        return coerce_text_list(s)
    raise ValueError(f"unknown column kind {spec.kind!r}")
