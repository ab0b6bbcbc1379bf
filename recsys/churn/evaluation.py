"""The churn model beside its baselines on one evaluation snapshot: metrics, calibration,
per-segment ROC-AUC and bootstrap intervals."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

from recsys import constants as C
from recsys.churn.baselines import logistic_baseline
from recsys.churn.model import ChurnModel
from recsys.evaluation.bootstrap import check_level, percentile_interval
from recsys.evaluation.classification import BOOTSTRAP_METRICS, bootstrap_ranking_metrics, classification_metrics

logger = logging.getLogger(__name__)

SCORERS = ("model", "recency_rule", "bgnbd", "logistic")  # the model first, then its baselines


def per_segment_auc(y: pd.Series, score: pd.Series, segments: pd.Series, min_each: int = 5) -> pd.DataFrame:
    """ROC-AUC within each segment that has at least ``min_each`` churners and stayers."""
    rows = []
    for name, idx in segments.groupby(segments).groups.items():
        ys, ss = y.loc[idx], score.loc[idx]
        pos = int(ys.sum())
        auc = float(roc_auc_score(ys, ss)) if pos >= min_each and len(ys) - pos >= min_each else float("nan")
        rows.append({"segment": name, "customers": len(ys), "churners": pos, "roc_auc": auc})
    return pd.DataFrame(rows).set_index("segment")


@dataclass
class ChurnEvaluation:
    """Metrics of the model and its baselines on one evaluation snapshot."""

    as_of: pd.Timestamp
    metrics: dict[str, dict[str, float]]  # model name -> metrics
    calibration: pd.DataFrame
    segment_auc: pd.DataFrame
    scores: pd.DataFrame  # per customer: label and every model's score
    extra: dict = field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        return {f"{model}_{k}": v for model, m in self.metrics.items() for k, v in m.items()}

    def beats_baselines(self, on: tuple[str, ...] = ("roc_auc", "average_precision")) -> bool:
        model = self.metrics["model"]
        return all(model[k] > m[k] for name, m in self.metrics.items() if name != "model" for k in on)

    def intervals(self, n_boot: int = 500, level: float = 0.95, seed: int = C.SEED) -> dict[str, float]:
        """Bootstrap intervals over the evaluation's customers, one set of resamples for all:
        the model's ROC-AUC and AP (``model_roc_auc_low``, ``_high``) and, paired, the model
        minus each baseline (``model_minus_logistic_average_precision``, ``_low``, ``_high``).
        Flat, ready for MLflow beside :meth:`flat_metrics`."""
        check_level(level)
        y = self.scores["churned"].to_numpy()
        boot = bootstrap_ranking_metrics(y, {name: self.scores[name].to_numpy() for name in self.metrics}, n_boot, seed)
        out = {}
        for metric in BOOTSTRAP_METRICS:
            out[f"model_{metric}_low"], out[f"model_{metric}_high"] = percentile_interval(boot["model"][metric], level)
            for name in self.metrics:
                if name != "model":
                    key = f"model_minus_{name}_{metric}"
                    out[key] = self.metrics["model"][metric] - self.metrics[name][metric]
                    out[f"{key}_low"], out[f"{key}_high"] = percentile_interval(
                        boot["model"][metric] - boot[name][metric], level
                    )
        return out


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10, level: float = 0.95) -> pd.DataFrame:
    """Per bin of equal size by predicted probability: its customers, mean prediction, observed
    churn rate and the rate's Wilson interval."""
    frame = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
    g = frame.groupby("bin")
    out = pd.DataFrame({"customers": g.size(), "mean_predicted": g["p"].mean(), "observed_rate": g["y"].mean()})
    cis = [
        stats.binomtest(int(k), int(n)).proportion_ci(level, method="wilson")
        for k, n in zip(g["y"].sum(), out["customers"])
    ]
    out["low"], out["high"] = [c.low for c in cis], [c.high for c in cis]
    return out.reset_index(drop=True)


def evaluate(
    model: ChurnModel, eval_set: pd.DataFrame, baseline_train: pd.DataFrame, segments: pd.Series | None = None
) -> ChurnEvaluation:
    """Score the model and the baselines on ``eval_set`` (one snapshot)."""
    y = eval_set["churned"].to_numpy()
    X = eval_set[list(model.feature_names_)]
    logistic = logistic_baseline(model.random_state).fit(
        baseline_train[list(model.feature_names_)], baseline_train["churned"]
    )
    scores = pd.DataFrame(
        {
            C.CUSTOMER_ID: eval_set[C.CUSTOMER_ID].to_numpy(),
            "churned": y,
            "model": model.predict_proba(X)[:, 1],
            "recency_rule": eval_set["recency_days"].to_numpy(),
            "bgnbd": 1.0 - eval_set["p_alive"].to_numpy(),
            "logistic": logistic.predict_proba(X)[:, 1],
        }
    )
    metrics = {name: classification_metrics(y, scores[name].to_numpy()) for name in SCORERS}
    calibration = calibration_table(y, scores["model"].to_numpy())
    seg_auc = pd.DataFrame()
    if segments is not None:
        idx = scores.set_index(C.CUSTOMER_ID)
        seg_auc = per_segment_auc(idx["churned"], idx["model"], segments.reindex(idx.index))
    return ChurnEvaluation(pd.Timestamp(eval_set["snapshot"].iloc[0]), metrics, calibration, seg_auc, scores)
