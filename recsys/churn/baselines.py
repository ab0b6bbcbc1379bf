"""Baselines the churn model is judged against: a recency rule, BG/NBD's 1 - P(alive) and a
logistic regression on the same features (recsys.churn.evaluation scores all of them)."""

from __future__ import annotations

import logging

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from recsys import constants as C
from recsys.transforms import signed_log

logger = logging.getLogger(__name__)


def logistic_baseline(random_state: int = C.SEED) -> Pipeline:
    """Logistic regression on the log of the features, missing values imputed by the median."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("log", FunctionTransformer(signed_log)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=2000, C=1.0, random_state=random_state)),
        ]
    )
