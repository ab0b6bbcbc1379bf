"""The churn protocol of the training pipeline, in one function: rolling-origin snapshots, a
backtest model evaluated on the last snapshot beside its baselines, and the model to serve,
refitted on every snapshot with the hyperparameters the backtest chose."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recsys import constants as C
from recsys.churn.evaluation import ChurnEvaluation, evaluate
from recsys.churn.labels import churn_snapshots, training_set
from recsys.churn.model import ChurnModel
from recsys.customers import rfm_segments


@dataclass(frozen=True)
class Backtest:
    snapshots: list[pd.Timestamp]
    data: pd.DataFrame  # features and labels at every snapshot
    eval_at: pd.Timestamp  # the last snapshot: the evaluation
    model: ChurnModel  # fitted on the snapshots whose label windows close before eval_at
    evaluation: ChurnEvaluation  # of that model and its baselines at eval_at
    final: ChurnModel  # refitted on every snapshot with the chosen hyperparameters: the one served


def rolling_backtest(
    ds,
    as_of: pd.Timestamp,
    *,
    horizon_days: int = C.DEFAULT_HORIZON_DAYS,
    every_days: int = 14,
    count: int = 18,
    seed: int = C.SEED,
) -> Backtest:
    """Snapshots every ``every_days`` (at most ``count``) up to the last whose label window closes
    by the data; the backtest and the served model (docs/churn.md, docs/training.md)."""
    snaps = churn_snapshots(ds.transactions, as_of, horizon_days=horizon_days, every_days=every_days, count=count)
    data = training_set(ds, snaps, horizon_days)
    eval_at = snaps[-1]
    backtest = data[data["snapshot"] + pd.Timedelta(days=horizon_days) <= eval_at]
    if backtest["snapshot"].nunique() < 2:
        raise ValueError(
            f"too little history for a churn backtest: {len(snaps)} snapshots before "
            f"{as_of:%Y-%m-%d} with a {horizon_days}-day horizon"
        )
    evaluation = data[data["snapshot"] == eval_at]
    model = ChurnModel(horizon_days=horizon_days, random_state=seed).fit(backtest)
    segments = rfm_segments(evaluation.set_index(C.CUSTOMER_ID))["segment"]
    result = evaluate(model, evaluation, backtest, segments)
    chosen = {k: (v,) for k, v in model.best_params_.items()}  # selected on the backtest; not re-tuned
    final = ChurnModel(horizon_days=horizon_days, param_grid=chosen, random_state=seed).fit(data)
    return Backtest(snaps, data, eval_at, model, result, final)
