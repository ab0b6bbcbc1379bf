"""Churn risk: labels and rolling-origin snapshots, a calibrated gradient-boosting model, its
baselines and evaluation, and per customer a probability, a band and reasons in words.
docs/churn.md describes the protocol."""

from recsys.churn.backtest import Backtest, rolling_backtest
from recsys.churn.baselines import logistic_baseline
from recsys.churn.evaluation import SCORERS, ChurnEvaluation, evaluate, per_segment_auc
from recsys.churn.labels import churn_labels, churn_snapshots, snapshot_dates, training_set
from recsys.churn.model import DEFAULT_PARAM_GRID, MODEL_FEATURES, ChurnModel, EmptyColumnsToZero
from recsys.churn.reasons import reasons, risk_band
from recsys.churn.scoring import customer_table, score_customers

__all__ = [
    "DEFAULT_PARAM_GRID",
    "MODEL_FEATURES",
    "SCORERS",
    "Backtest",
    "ChurnEvaluation",
    "ChurnModel",
    "EmptyColumnsToZero",
    "churn_labels",
    "churn_snapshots",
    "customer_table",
    "evaluate",
    "logistic_baseline",
    "per_segment_auc",
    "reasons",
    "risk_band",
    "rolling_backtest",
    "score_customers",
    "snapshot_dates",
    "training_set",
]
