"""Stage churn: the rolling-origin backtest of the churn model beside its baselines, then the
model served, refitted on every snapshot, and every customer's risk."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recsys import constants as C
from recsys.churn import (
    SCORERS,
    ChurnEvaluation,
    ChurnModel,
    churn_snapshots,
    customer_table,
    evaluate,
    score_customers,
    training_set,
)
from recsys.customers import rfm_segments
from recsys.reporting import plots
from training.config import TrainConfig
from training.stages.customers import Features, Loaded, Segmentation
from training.tracking import Tracker


@dataclass(frozen=True)
class Churn:
    model: ChurnModel  # fitted on every snapshot, scores as_of
    evaluation: ChurnEvaluation  # of the backtest model on the last snapshot
    customers: pd.DataFrame  # per customer: constants.CUSTOMER_COLUMNS


def churn(cfg: TrainConfig, track: Tracker, load: Loaded, features: Features, segmentation: Segmentation) -> Churn:
    ds, as_of = load.ds, load.as_of
    snaps = churn_snapshots(
        ds.transactions,
        as_of,
        horizon_days=cfg.horizon_days,
        every_days=cfg.snapshot_every_days,
        count=cfg.churn_snapshots,
    )
    data = training_set(ds, snaps, cfg.horizon_days)
    eval_at = snaps[-1]
    backtest = data[data["snapshot"] + pd.Timedelta(days=cfg.horizon_days) <= eval_at]
    if backtest["snapshot"].nunique() < 2:
        raise ValueError(
            f"too little history for a churn backtest: {len(snaps)} snapshots before "
            f"{as_of:%Y-%m-%d} with a {cfg.horizon_days}-day horizon"
        )
    evaluation = data[data["snapshot"] == eval_at]
    model = ChurnModel(horizon_days=cfg.horizon_days, random_state=cfg.seed).fit(backtest)
    seg = rfm_segments(evaluation.set_index(C.CUSTOMER_ID))["segment"]
    result = evaluate(model, evaluation, backtest, seg)
    track.log_params(
        {
            "churn_eval_at": eval_at.date(),
            "churn_train_snapshots": backtest["snapshot"].nunique(),
            **{f"churn_{k}": v for k, v in model.best_params_.items()},
        },
        parent=False,
    )
    track.log_metrics({f"churn_{k}": v for k, v in result.flat_metrics().items()})
    track.log_metrics({"churn_eval_rate": float(evaluation["churned"].mean())})
    track.log_metrics({f"churn_{k}": v for k, v in result.intervals().items()})  # 95%, 500 resamples
    track.log_table(result.segment_auc, "churn/segment_auc.csv")
    track.log_table(pd.DataFrame(result.metrics).T, "churn/metrics.csv")
    track.log_figures(
        {
            "calibration": plots.calibration(
                result.calibration, note=f"{ds.source}; evaluated at {eval_at:%Y-%m-%d}, {cfg.horizon_days}-day horizon"
            ),
            "capture": plots.lift_curve(result.scores, "churned", list(SCORERS)),
        },
        "churn",
    )
    # The served model learns from every snapshot, the evaluation one included, and scores as_of.
    chosen = {k: (v,) for k, v in model.best_params_.items()}  # selected on the backtest; not re-tuned
    final = ChurnModel(horizon_days=cfg.horizon_days, param_grid=chosen, random_state=cfg.seed).fit(data)
    scores = score_customers(final, features.features)
    customers = customer_table(scores, features.features, segmentation.segments, segmentation.clusters)
    p = customers["churn_probability"]
    track.log_metrics({"churn_scored_customers": len(p), "churn_high_band_share": float((p >= C.HIGH_RISK).mean())})
    return Churn(final, result, customers)
