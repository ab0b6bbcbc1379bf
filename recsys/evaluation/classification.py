"""Metrics of a scorer of binary outcomes (churned or not): ROC-AUC, average precision, Brier,
lift and capture in the top shares, and their bootstrap intervals, alone and paired.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from recsys import constants as C
from recsys.evaluation.bootstrap import check_level, percentile_interval, resample_counts

BOOTSTRAP_METRICS = ("roc_auc", "average_precision")
TOP_SHARES = (0.1, 0.2)  # lift and capture in the top 10% and 20% by score


def lift_and_capture(y: np.ndarray, score: np.ndarray, top: float) -> tuple[float, float]:
    """Churn rate in the top ``top`` share by score over the base rate, and the share of all
    churners found there."""
    n = max(1, int(round(len(y) * top)))
    order = np.argsort(-score, kind="stable")[:n]
    base = y.mean()
    hit = y[order].mean()
    return (hit / base if base > 0 else float("nan")), (y[order].sum() / y.sum() if y.sum() > 0 else float("nan"))


def classification_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    y = np.asarray(y)
    score = np.asarray(score, dtype=float)
    out = {
        "roc_auc": float(roc_auc_score(y, score)),
        "average_precision": float(average_precision_score(y, score)),
    }
    if score.min() >= 0 and score.max() <= 1:
        out["brier"] = float(brier_score_loss(y, score))
    for top in TOP_SHARES:
        lift, capture = lift_and_capture(y, score, top)
        out[f"lift_top{int(top * 100)}"] = float(lift)
        out[f"capture_top{int(top * 100)}"] = float(capture)
    return out


def weighted_ranking_metrics(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """ROC-AUC and average precision of ``score`` under each row of ``weights`` (row x customer).

    A bootstrap resample is the customers weighted by how often each was drawn, so every
    resample's metrics come from one sort of the scores. Tied scores are one threshold, as in
    scikit-learn: AUC counts a tied (churner, stayer) pair as half; AP is the sum over
    thresholds of the recall gained times the precision there. Row for row, the results equal
    ``roc_auc_score`` and ``average_precision_score`` on the resampled customers.
    """
    y = np.asarray(y) == 1
    score = np.asarray(score, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(-score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # one group per distinct score, descending
    w = weights[:, order]
    tp = np.add.reduceat(w * y[order], starts, axis=1)  # churners per threshold group
    fp = np.add.reduceat(w * ~y[order], starts, axis=1)  # stayers per threshold group
    tp_cum, fp_cum = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    pos, neg = tp_cum[:, -1], fp_cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((tp_cum - tp) * fp + 0.5 * tp * fp).sum(axis=1) / (pos * neg)
        precision = np.where(tp_cum + fp_cum > 0, tp_cum / np.maximum(tp_cum + fp_cum, 1e-300), 0.0)
        ap = (tp * precision).sum(axis=1) / pos
    return {"roc_auc": auc, "average_precision": ap}


def bootstrap_ranking_metrics(
    y: np.ndarray, scores: dict[str, np.ndarray], n_boot: int = 500, seed: int = C.SEED
) -> dict[str, dict[str, np.ndarray]]:
    """ROC-AUC and average precision of every scorer on ``n_boot`` resamples of the customers
    (recsys.evaluation.bootstrap), the same resamples for every scorer. Resamples without both
    classes are left out (the metrics are undefined there)."""
    y = np.asarray(y)
    n = len(y)
    parts: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in scores}
    for counts in resample_counts(n, n_boot, seed):
        positives = counts @ (y == 1)
        counts = counts[(positives > 0) & (positives < n)]
        if len(counts):
            for name, score in scores.items():
                parts[name].append(weighted_ranking_metrics(y, score, counts))
    if not parts[next(iter(scores))]:
        raise ValueError("no bootstrap resample holds both churners and stayers: the labels need both classes")
    return {
        name: {m: np.concatenate([p[m] for p in chunks]) for m in BOOTSTRAP_METRICS} for name, chunks in parts.items()
    }


def bootstrap_interval(
    y: np.ndarray,
    score: np.ndarray,
    metric: str = "average_precision",
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = C.SEED,
) -> tuple[float, float]:
    """The ``level`` bootstrap interval of one scorer's ``roc_auc`` or ``average_precision``."""
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"metric must be one of {', '.join(BOOTSTRAP_METRICS)}, not {metric!r}")
    check_level(level)
    return percentile_interval(bootstrap_ranking_metrics(y, {"score": score}, n_boot, seed)["score"][metric], level)


def bootstrap_differences(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    reference: str = "model",
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = C.SEED,
) -> pd.DataFrame:
    """Paired bootstrap of ``reference`` minus every other scorer, for ROC-AUC and average precision.

    Customers are resampled with replacement, the same sample for both scorers, ``n_boot`` times.
    One row per (baseline, metric): the observed difference and its ``level`` interval. An
    interval holding 0 means the evaluation cannot tell the two apart.
    """
    y = np.asarray(y)
    if reference not in scores:
        raise ValueError(f"reference {reference!r} is not among the scores ({', '.join(scores)})")
    check_level(level)
    boot = bootstrap_ranking_metrics(y, scores, n_boot, seed)
    observed = {name: weighted_ranking_metrics(y, score, np.ones((1, len(y)))) for name, score in scores.items()}
    rows = []
    for name in scores:
        if name == reference:
            continue
        for metric in BOOTSTRAP_METRICS:
            lo, hi = percentile_interval(boot[reference][metric] - boot[name][metric], level)
            rows.append(
                {
                    "baseline": name,
                    "metric": metric,
                    "difference": float(observed[reference][metric][0] - observed[name][metric][0]),
                    "low": float(lo),
                    "high": float(hi),
                }
            )
    return pd.DataFrame(rows)
