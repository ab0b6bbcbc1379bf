"""Rows of a table before a moment, without copying a table that is before it already.

Every model here reads only data strictly before its ``as_of``; with the default ``as_of`` (the
day after the last purchase) that is every row, and a boolean filter would copy the whole table
(14.7M lines at ten times The Complete Journey) for nothing.
"""

from __future__ import annotations

import pandas as pd

from recsys import constants as C


def before(df: pd.DataFrame | None, as_of, column: str = C.TIMESTAMP) -> pd.DataFrame | None:
    """Rows of ``df`` with ``column`` strictly before ``as_of``: ``df`` itself when all are."""
    if df is None:
        return None
    t = df[column]
    as_of = pd.Timestamp(as_of)
    if len(t) == 0 or t.max() < as_of:
        return df
    return df[t < as_of]
