"""Problems found in a dataset, collected as validation goes, each with up to five examples."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import Issue

MAX_EXAMPLES = 5
MAX_ROWS = 100


def examples(values: Any) -> tuple:
    out, seen = [], set()
    for v in values:
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, pd.Timestamp):
            v = v.isoformat()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        key = repr(v)
        if key in seen:
            continue
        seen.add(key)
        out.append(v)
        if len(out) == MAX_EXAMPLES:
            break
    return tuple(out)


def issue(
    table: str, column: str | None, problem: str, values: Any = (), severity: str = "error", label: str = ""
) -> Issue:
    rows = ()
    if isinstance(values, pd.Series) and pd.api.types.is_integer_dtype(values.index.dtype):
        rows = tuple(int(i) for i in values.index[:MAX_ROWS])
    values = list(values)
    return Issue(table, column, problem, len(values), examples(values), severity, label, rows)


class Collector:
    """The issues of one validation, errors and warnings."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, issue: Issue) -> None:
        self.issues.append(issue)

    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]
