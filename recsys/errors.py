"""Typed errors of the library. Each carries what went wrong and where."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class RecsysError(Exception):
    """Base class for errors raised by the library."""


@dataclass(frozen=True)
class Issue:
    """One problem found in a dataset: which table and column, how many rows, examples."""

    table: str
    column: str | None
    problem: str
    n_rows: int = 0
    examples: Sequence[Any] = field(default_factory=tuple)
    severity: str = "error"  # "error" or "warning"
    example_label: str = ""  # what the examples are when not the column's own values
    rows: tuple[int, ...] = ()  # positions of the first offending rows (up to 100), where known

    def __str__(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        text = f"{where}: {self.problem}"
        if self.n_rows:
            text += f" ({self.n_rows} row{'s' if self.n_rows != 1 else ''}"
            if len(self.examples):
                shown = ", ".join(_show(v) for v in self.examples)
                text += f"; first{' ' + self.example_label if self.example_label else ''}: {shown}"
            text += ")"
        elif len(self.examples):
            text += f" (first: {', '.join(_show(v) for v in self.examples)})"
        return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class DataValidationError(RecsysError):
    """A dataset broke the data contract; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = list(issues)
        lines = [str(i) for i in self.issues]
        head = f"invalid dataset: {len(lines)} problem{'s' if len(lines) != 1 else ''}"
        super().__init__(head + "\n  - " + "\n  - ".join(lines))


class DataSourceError(RecsysError):
    """A data source cannot be read at all (missing path, unknown format, bad URL)."""


class InvalidRequestError(RecsysError, ValueError):
    """A ranking or scoring request names an unknown channel, a bad k or similar."""


class UnknownValueError(RecsysError, ValueError):
    """A well-formed value the model or catalog does not know (a segment, a cluster)."""


class ConfigurationError(RecsysError, ValueError):
    """A setting from the environment that cannot be used; the message names it and its value."""
