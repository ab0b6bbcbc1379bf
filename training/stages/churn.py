"""Stage churn: the rolling-origin backtest of the churn model beside its baselines, then the
model served, refitted on every snapshot, and every customer's risk."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import pandas as pd

from recsys import constants as C
from recsys.churn import (
    SCORERS,
    ChurnModel,
    customer_table,
    score_customers,
)
from recsys.churn.backtest import Backtest, rolling_backtest
from recsys.churn.model import TooFewChurners
from recsys.errors import DataValidationError, Issue
from recsys.reporting import plots
from training.config import TrainConfig
from training.stages.customers import Features, Loaded, Segmentation
from training.tracking import Tracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Churn:
    backtest: Backtest  # snapshots, the backtest model and its evaluation, the served model, the mode
    customers: pd.DataFrame  # per customer: constants.CUSTOMER_COLUMNS
    # the evaluation snapshot: features, churned and the backtest model's score ("model") per
    # customer; the quality gate scores the champion's backtest model on it (None: not evaluated)
    evaluation_set: pd.DataFrame | None = None

    @property
    def model(self) -> ChurnModel:
        """The served model: fitted on every snapshot, scores as_of."""
        return self.backtest.final


def churn(cfg: TrainConfig, track: Tracker, load: Loaded, features: Features, segmentation: Segmentation) -> Churn:
    ds, as_of = load.ds, load.as_of
    try:
        bt = rolling_backtest(
            ds,
            as_of,
            horizon_days=cfg.horizon_days,
            every_days=cfg.snapshot_every_days,
            count=cfg.churn_snapshots,
            seed=cfg.seed,
            history=features.history,
        )
    except TooFewChurners as exc:  # a property of the data: exit 2 with what it holds
        raise DataValidationError([Issue(C.TRANSACTIONS, C.CUSTOMER_ID, str(exc))]) from None
    track.log_params({"churn_mode": bt.mode, "churn_snapshots_used": len(bt.snapshots)}, parent=False)
    for note in bt.notes:
        logger.warning("churn: %s", note)
    if bt.notes:
        mlflow.log_text("\n".join(bt.notes) + "\n", "churn/notes.txt")
    if bt.evaluation is not None:
        _log_evaluation(cfg, track, ds, bt)
    else:
        track.log_params({"churn_final_params": bt.final.best_params_}, parent=False)
    # The served model learns from every snapshot, the evaluation one included, and scores as_of.
    final = bt.final
    scores = score_customers(final, features.features)
    customers = customer_table(scores, features.features, segmentation.segments, segmentation.clusters)
    p = customers["churn_probability"]
    track.log_metrics({"churn_scored_customers": len(p), "churn_high_band_share": float((p >= C.HIGH_RISK).mean())})
    return Churn(bt, customers, _evaluation_set(bt))


def _evaluation_set(bt) -> pd.DataFrame | None:
    if bt.evaluation is None:
        return None
    rows = bt.data[bt.data["snapshot"] == bt.eval_at].set_index(C.CUSTOMER_ID)
    scores = bt.evaluation.scores.set_index(C.CUSTOMER_ID)["model"]
    return rows[[*bt.model.feature_names_, "churned"]].assign(model=scores.reindex(rows.index).to_numpy())


def _log_evaluation(cfg: TrainConfig, track: Tracker, ds, bt) -> None:
    model, result, eval_at = bt.model, bt.evaluation, bt.eval_at
    backtest = bt.data[bt.data["snapshot"] + pd.Timedelta(days=cfg.horizon_days) <= eval_at]
    evaluation = bt.data[bt.data["snapshot"] == eval_at]
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
            "capture": plots.lift_curve(
                result.scores,
                "churned",
                list(SCORERS),
                note=f"{ds.source}; evaluated at {eval_at:%Y-%m-%d}, {cfg.horizon_days}-day horizon",
            ),
        },
        "churn",
    )
