"""Numbers, money and dates as people read them, for the page's templates."""

from __future__ import annotations

import math

import pandas as pd


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def pct(v, digits: int = 1) -> str:
    return "–" if _missing(v) else f"{float(v) * 100:.{digits}f}%"


def money(v) -> str:
    return "–" if _missing(v) else f"${float(v):,.2f}"


def number(v, digits: int = 2) -> str:
    if _missing(v):
        return "–"
    return f"{v:,}" if isinstance(v, int) else f"{float(v):,.{digits}f}"


def date(v) -> str:
    return "–" if _missing(v) else pd.Timestamp(v).date().isoformat()


def moment(v) -> str:
    return "–" if _missing(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")


FILTERS = {"pct": pct, "money": money, "number": number, "date": date, "moment": moment}
