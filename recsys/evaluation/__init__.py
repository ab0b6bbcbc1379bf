"""Evaluation shared by every domain: top-k ranking metrics, metrics of binary scorers, and the
one bootstrap behind every interval."""

from recsys.evaluation.bootstrap import paired_ratio_interval, percentile_interval, resample_counts
from recsys.evaluation.classification import (
    bootstrap_differences,
    bootstrap_interval,
    bootstrap_ranking_metrics,
    classification_metrics,
    lift_and_capture,
    weighted_ranking_metrics,
)
from recsys.evaluation.drift import PSI_WARN, drift_table, profile_sample, psi
from recsys.evaluation.ranking import ranking_metrics, user_metrics

__all__ = [
    "PSI_WARN",
    "bootstrap_differences",
    "bootstrap_interval",
    "bootstrap_ranking_metrics",
    "classification_metrics",
    "drift_table",
    "lift_and_capture",
    "paired_ratio_interval",
    "percentile_interval",
    "profile_sample",
    "psi",
    "ranking_metrics",
    "resample_counts",
    "user_metrics",
    "weighted_ranking_metrics",
]
