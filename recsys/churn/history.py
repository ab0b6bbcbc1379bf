"""How much history the churn protocol needs, and what it does with less.

A churn model of horizon H learns from snapshots whose H-day label windows close by the data,
each with at least ``FEATURE_DAYS`` of history before it. With T days of transactions:

- ``T >= FEATURE_DAYS + 3H``: hyperparameters are chosen on a validation snapshot strictly
  after the training snapshots' labels, and the model is evaluated on a later one (full);
- ``T >= FEATURE_DAYS + 2H``: no room to choose hyperparameters; the defaults are used and
  the model is still evaluated on a snapshot after its training labels (``default_parameters``);
- ``T >= FEATURE_DAYS + H``: the model trains, but nothing is left to evaluate it on
  (``not_evaluated``; the quality gate then refuses to promote it unless forced);
- less: no snapshot has a closed label window; training is refused.
"""

from __future__ import annotations

import pandas as pd

from recsys import constants as C
from recsys.data.line_file import time_span
from recsys.errors import DataValidationError, Issue

FEATURE_DAYS = 28  # history before the first snapshot, so that its features mean something

FULL, DEFAULT_PARAMETERS, NOT_EVALUATED = "full", "default_parameters", "not_evaluated"


def required_days(horizon_days: int) -> dict[str, int]:
    """Days of transactions each churn mode needs at a horizon."""
    return {
        FULL: FEATURE_DAYS + 3 * horizon_days,
        DEFAULT_PARAMETERS: FEATURE_DAYS + 2 * horizon_days,
        NOT_EVALUATED: FEATURE_DAYS + horizon_days,
    }


def history_days(transactions, as_of: pd.Timestamp) -> int:
    """Whole days from the first transaction to ``as_of`` (or the last transaction, if earlier);
    ``transactions``: a frame or a LineFile."""
    first, last = time_span(transactions)
    if first is None or not first < pd.Timestamp(as_of):
        return 0
    end = min(pd.Timestamp(as_of), last).normalize()
    return int((end - first.normalize()).days)


class InsufficientHistoryError(DataValidationError):
    """Too little history for a churn model of the asked horizon (a data problem: exit 2)."""


def check_history(transactions, as_of: pd.Timestamp, horizon_days: int) -> str:
    """The churn mode this history allows; raises InsufficientHistoryError below the minimum."""
    days = history_days(transactions, as_of)
    need = required_days(horizon_days)
    if days < need[NOT_EVALUATED]:
        first, last = time_span(transactions)
        span = (
            f"{first:%Y-%m-%d} to {min(pd.Timestamp(as_of), last):%Y-%m-%d}" if first is not None else "no transactions"
        )
        longest = days - FEATURE_DAYS
        hint = (
            f"; use --horizon-days {longest} or less, or more history" if longest >= 7 else "; more history is needed"
        )
        raise InsufficientHistoryError(
            [
                Issue(
                    C.TRANSACTIONS,
                    C.TIMESTAMP,
                    f"spans {days} days before as_of ({span}); a {horizon_days}-day churn horizon needs at least "
                    f"{need[NOT_EVALUATED]} days ({FEATURE_DAYS} days of history before the first snapshot and one "
                    f"{horizon_days}-day label window){hint}",
                )
            ]
        )
    if days >= need[FULL]:
        return FULL
    return DEFAULT_PARAMETERS if days >= need[DEFAULT_PARAMETERS] else NOT_EVALUATED
