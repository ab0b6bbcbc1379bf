"""The churn protocol of the training pipeline, in one function: rolling-origin snapshots, a
backtest model evaluated on the last snapshot beside its baselines, and the model to serve,
refitted on every snapshot with the hyperparameters the backtest chose."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recsys import constants as C
from recsys.churn.evaluation import ChurnEvaluation, evaluate
from recsys.churn.history import (
    DEFAULT_PARAMETERS,
    FULL,
    NOT_EVALUATED,
    check_history,
    history_days,
    required_days,
)
from recsys.churn.labels import churn_snapshots, training_set
from recsys.churn.model import DEFAULT_PARAMS, ChurnModel, TooFewChurners
from recsys.customers import rfm_segments


@dataclass(frozen=True)
class Backtest:
    snapshots: list[pd.Timestamp]
    data: pd.DataFrame  # features and labels at every snapshot
    eval_at: pd.Timestamp | None  # the last snapshot: the evaluation (None: history too short to evaluate)
    model: ChurnModel | None  # fitted on the snapshots whose label windows close before eval_at
    evaluation: ChurnEvaluation | None  # of that model and its baselines at eval_at
    final: ChurnModel  # refitted on every snapshot with the chosen hyperparameters: the one served
    mode: str = FULL  # recsys.churn.history: full, default_parameters or not_evaluated
    notes: tuple[str, ...] = ()  # what was done differently, in words, for the run's log


def _selectable(snaps: list[pd.Timestamp], horizon: pd.Timedelta) -> bool:
    """A validation snapshot (the last) with a training snapshot whose labels close before it."""
    return len(snaps) >= 2 and snaps[0] + horizon <= snaps[-1]


def rolling_backtest(
    ds,
    as_of: pd.Timestamp,
    *,
    horizon_days: int = C.DEFAULT_HORIZON_DAYS,
    every_days: int = 14,
    count: int = 18,
    seed: int = C.SEED,
    history=None,
) -> Backtest:
    """Snapshots every ``every_days`` (at most ``count``) up to the last whose label window closes
    by the data; the backtest and the served model (docs/churn.md, docs/training.md).

    With too little history to choose hyperparameters or to evaluate, it degrades as
    recsys.churn.history describes and says so in ``notes``; below the minimum it raises
    InsufficientHistoryError. ``history``: the data's PurchaseHistory, if the caller has one."""
    check_history(ds.transactions, as_of, horizon_days)
    h = pd.Timedelta(days=horizon_days)
    snaps = churn_snapshots(ds.transactions, as_of, horizon_days=horizon_days, every_days=every_days, count=count)
    eval_at = snaps[-1]
    back = [s for s in snaps if s + h <= eval_at]
    notes: list[str] = []
    if back and not _selectable(back, h) and eval_at - h not in back:
        # the grid missed it: a validation snapshot exactly one horizon before the evaluation
        extra = sorted([*back, eval_at - h])
        if _selectable(extra, h):
            snaps, back = sorted([*snaps, eval_at - h]), extra
            notes.append(f"validation snapshot added at {eval_at - h:%Y-%m-%d}, one horizon before the evaluation")
    data = training_set(ds, snaps, horizon_days, history)
    need, days = required_days(horizon_days), history_days(ds.transactions, as_of)
    defaults = {k: (v,) for k, v in DEFAULT_PARAMS.items()}
    if not back:
        final = ChurnModel(horizon_days=horizon_days, param_grid=defaults, random_state=seed).fit(data)
        notes.append(
            f"churn evaluation skipped: the data spans {days} days and evaluating a {horizon_days}-day model needs "
            f"{need[DEFAULT_PARAMETERS]}; default hyperparameters, trained on {len(snaps)} snapshots"
        )
        return Backtest(snaps, data, None, None, None, final, NOT_EVALUATED, tuple(notes))
    backtest = data[data["snapshot"].isin(back)]
    evaluation = data[data["snapshot"] == eval_at]
    mode = FULL if _selectable(back, h) else DEFAULT_PARAMETERS
    if mode == DEFAULT_PARAMETERS:
        notes.append(
            f"hyperparameters not tuned: the data spans {days} days and choosing them for a {horizon_days}-day "
            f"model needs {need[FULL]}; defaults {DEFAULT_PARAMS} used, evaluated at {eval_at:%Y-%m-%d}"
        )
    model = None
    if mode == FULL:
        try:
            model = ChurnModel(horizon_days=horizon_days, random_state=seed).fit(backtest)
        except TooFewChurners as exc:
            mode = DEFAULT_PARAMETERS
            notes.append(f"hyperparameters not tuned ({exc}); defaults {DEFAULT_PARAMS} used")
    if model is None:
        model = ChurnModel(horizon_days=horizon_days, param_grid=defaults, random_state=seed).fit(backtest)
    segments = rfm_segments(evaluation.set_index(C.CUSTOMER_ID))["segment"]
    result = evaluate(model, evaluation, backtest, segments)
    chosen = {k: (v,) for k, v in model.best_params_.items()}  # selected on the backtest; not re-tuned
    final = ChurnModel(horizon_days=horizon_days, param_grid=chosen, random_state=seed).fit(data)
    return Backtest(snaps, data, eval_at, model, result, final, mode, tuple(notes))
