"""The churn model: gradient boosting chosen on a temporal validation, refitted on every
snapshot and calibrated out of fold."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from recsys import constants as C
from recsys.churn.baselines import logistic_baseline
from recsys.customers import FEATURE_COLUMNS

logger = logging.getLogger(__name__)


MODEL_FEATURES = (*FEATURE_COLUMNS, "p_alive", "expected_purchases")


# Stumps (2 leaves: an additive model of the features) are in the grid: with a few hundred
# churners per snapshot they validate best on The Complete Journey (docs/churn.md).
DEFAULT_PARAM_GRID = {
    "learning_rate": (0.03,),
    "max_leaf_nodes": (2, 5),
    "min_samples_leaf": (50, 200),
}


# The logistic regression of recsys.churn.baselines as a candidate of the default search: on
# some data (The Complete Journey among them) it validates as well as the boosted trees, and
# the served model should be whichever validates better.
LOGISTIC = {"estimator": "logistic"}


# Used when the history is too short to choose (recsys.churn.history): the grid's most
# regular point, stumps with large leaves.
DEFAULT_PARAMS = {"learning_rate": 0.03, "max_leaf_nodes": 2, "min_samples_leaf": 20}


# Risk can only grow with silence and only fall with recent activity: this keeps trees sensible
# for customers quieter than any seen in training (later snapshots have longer histories).
MONOTONE = {
    "recency_days": 1,
    "overdue_ratio": 1,
    "p_alive": -1,
    "expected_purchases": -1,
    "baskets_90d": -1,
    "baskets_30d": -1,
}


MIN_CHURNERS = 5  # in the training and in the validation snapshots, or fitting is refused


MIN_CHURNERS_EARLY_STOPPING = 40  # fewer: a fixed number of boosting iterations instead


class TooFewChurners(ValueError):
    """A part of the training set holds too few churners (or too few who stayed) to fit on."""


class EmptyColumnsToZero(TransformerMixin, BaseEstimator):
    """Columns with no value at all in training (e.g. redemption rate before any offer was sent)
    become 0: they carry no information, and gradient boosting cannot bin an all-missing column."""

    def fit(self, X: pd.DataFrame, y=None) -> EmptyColumnsToZero:
        self.empty_ = [c for c in X.columns if X[c].isna().all()]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.assign(**dict.fromkeys(self.empty_, 0.0)) if self.empty_ else X

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_


class ChurnModel(BaseEstimator):
    """Gradient boosting with hyperparameters chosen on a temporal validation, refitted on
    every training snapshot and calibrated (Platt scaling) out of fold.

    ``fit`` takes a training set from :func:`training_set`. Selection: each grid point is fitted
    on the snapshots whose label windows end before the latest snapshot starts and scored (average
    precision) on the latest, so validation is strictly later than training. The chosen
    parameters are then refitted on all snapshots; calibration folds split by snapshot.

    Parameters: ``horizon_days`` (the label window), ``param_grid`` (gradient-boosting
    hyperparameters to choose from; default ``DEFAULT_PARAM_GRID``), ``features``,
    ``random_state``.

    Fitted: ``model_`` (the calibrated classifier), ``best_params_``,
    ``validation_average_precision_``, ``validation_scores_`` (every grid point),
    ``train_snapshots_``, ``validation_snapshot_``, ``feature_names_``.
    """

    def __init__(
        self,
        horizon_days: int = C.DEFAULT_HORIZON_DAYS,
        param_grid: dict | None = None,
        features: tuple[str, ...] = MODEL_FEATURES,
        random_state: int = C.SEED,
    ):
        self.horizon_days = horizon_days
        self.param_grid = param_grid
        self.features = features
        self.random_state = random_state

    def _split(self, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        snaps = sorted(data["snapshot"].unique())
        valid_at = snaps[-1]
        train = data[data["snapshot"] + pd.Timedelta(days=self.horizon_days) <= valid_at]
        if train.empty:
            raise ValueError(
                f"no training snapshot ends its {self.horizon_days}-day label window before the "
                f"validation snapshot {pd.Timestamp(valid_at):%Y-%m-%d}; add earlier snapshots"
            )
        return train, data[data["snapshot"] == valid_at]

    def _booster(self, positives: int, **params) -> Pipeline:
        if params.get("estimator") == LOGISTIC["estimator"]:
            return logistic_baseline(self.random_state)
        # Early stopping holds out 15% stratified; with few churners that split is too thin to
        # trust (or impossible), so a fixed, shorter schedule is used instead.
        stop_early = positives >= MIN_CHURNERS_EARLY_STOPPING
        gbm = HistGradientBoostingClassifier(
            max_iter=400 if stop_early else 100,
            early_stopping=stop_early,
            validation_fraction=0.15,
            n_iter_no_change=30,
            l2_regularization=1.0,
            random_state=self.random_state,
            monotonic_cst={k: v for k, v in MONOTONE.items() if k in self.features},
            **params,
        )
        return Pipeline([("empty", EmptyColumnsToZero().set_output(transform="pandas")), ("gbm", gbm)])

    @staticmethod
    def _check_churners(name: str, part: pd.DataFrame) -> None:
        churners = int(part["churned"].sum())
        if churners < MIN_CHURNERS or len(part) - churners < MIN_CHURNERS:
            raise TooFewChurners(
                f"the {name} snapshots hold {churners} churners among {len(part)} customers; a "
                f"churn model needs at least {MIN_CHURNERS} churners and {MIN_CHURNERS} who stayed: use more "
                "or later snapshots or a shorter horizon"
            )

    def fit(self, data: pd.DataFrame, y=None) -> ChurnModel:
        missing = [c for c in (*self.features, "snapshot", "churned") if c not in data]
        if missing:
            raise ValueError(f"training set lacks columns: {', '.join(missing)}")
        grid = self.param_grid or DEFAULT_PARAM_GRID
        names = sorted(grid)
        points = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
        if self.param_grid is None:  # the default search also weighs the logistic regression
            points.append(dict(LOGISTIC))
        self.validation_scores_ = []
        best_model = None
        if len(points) == 1:  # nothing to choose: no validation snapshot is set aside
            self._check_churners("training", data)
            best, best_score = points[0], None
            self.train_snapshots_ = sorted(pd.Timestamp(s) for s in data["snapshot"].unique())
            self.validation_snapshot_ = None
        else:
            train, valid = self._split(data)
            self._check_churners("training", train)
            self._check_churners("validation", valid)
            X_tr, y_tr = train[list(self.features)], train["churned"]
            X_va, y_va = valid[list(self.features)], valid["churned"]
            best, best_score = None, -np.inf
            for params in points:
                model = self._booster(int(y_tr.sum()), **params).fit(X_tr, y_tr)
                score = average_precision_score(y_va, model.predict_proba(X_va)[:, 1])
                self.validation_scores_.append({**params, "average_precision": score})
                if score > best_score:
                    best, best_score, best_model = params, score, model
            self.train_snapshots_ = sorted(pd.Timestamp(s) for s in train["snapshot"].unique())
            self.validation_snapshot_ = pd.Timestamp(valid["snapshot"].iloc[0])
        self.best_params_ = best
        self.validation_average_precision_ = None if best_score is None else float(best_score)
        X_all, y_all = data[list(self.features)], data["churned"]
        snaps = data["snapshot"].rank(method="dense").astype(int).to_numpy()
        folds = min(3, len(np.unique(snaps)))
        if folds >= 2:
            splits = list(GroupKFold(n_splits=folds).split(X_all, y_all, groups=snaps))
            per_fold = int(y_all.sum()) * (folds - 1) // folds
            self.model_ = CalibratedClassifierCV(self._booster(per_fold, **best), method="sigmoid", cv=splits).fit(
                X_all, y_all
            )
        elif best_model is not None:
            self.model_ = CalibratedClassifierCV(FrozenEstimator(best_model), method="sigmoid").fit(X_va, y_va)
        else:  # one snapshot and nothing chosen: calibrate on stratified folds of it
            self.model_ = CalibratedClassifierCV(
                self._booster(int(y_all.sum()) * 2 // 3, **best), method="sigmoid", cv=3
            ).fit(X_all, y_all)
        self.feature_names_ = list(self.features)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(X[self.feature_names_])

    def predict_risk(self, X: pd.DataFrame) -> pd.Series:
        """Churn probability per customer."""
        return pd.Series(self.predict_proba(X)[:, 1], index=X.index, name="churn_probability")
