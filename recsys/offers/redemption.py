"""P(redeem) for a (customer, offer) pair: learned from past campaigns when there are enough,
a documented heuristic otherwise.

Training examples come from campaigns that ended before the training date: every offer sent is
a row, with features computed as of the send time and label 1 when the customer redeemed it
by the campaign's end. A campaign is a ``campaign_id`` of ``offer_events`` or, without one,
the offers sent on one day.

The examples are built in recsys.offers.examples.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from recsys import constants as C
from recsys.offers.features import OFFER_FEATURES, feature_matrix
from recsys.transforms import signed_log

logger = logging.getLogger(__name__)

# Fewer past redemptions than this: use the heuristic. The usual rule for logistic regression,
# about ten events per coefficient: with fewer, the coefficients follow the noise of a few
# campaigns and rank worse than the heuristic (docs/offers.md).
MIN_POSITIVES_PER_FEATURE = 10
MIN_POSITIVES = MIN_POSITIVES_PER_FEATURE * len(OFFER_FEATURES)


def heuristic_p_redeem(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Without redemption history: a logistic score of own spend on the offer's products and
    the collaborative-filtering score, with a 2% base rate.

    logit = -3.9 + 1.2 log1p(hist_spend) + 0.5 cf_score

    Spend leads; the CF score mostly orders the offers a customer has never bought, which are
    most of a catalog. Category purchases are left out: on both development campaigns every
    weight on them ranked the redeemed coupons lower (docs/offers.md).
    """
    X = pd.DataFrame(X, columns=list(OFFER_FEATURES)) if not isinstance(X, pd.DataFrame) else X
    z = -3.9 + 1.2 * np.log1p(X["hist_spend"].to_numpy()) + 0.5 * X["cf_score"].to_numpy()
    return 1.0 / (1.0 + np.exp(-z))


class RedemptionModel(BaseEstimator):
    """Logistic regression on log features (default) or gradient boosting on OFFER_FEATURES;
    falls back to :func:`heuristic_p_redeem` when the examples hold fewer than
    ``min_positives`` redemptions.

    Parameters: ``kind`` (``logistic`` or ``gbm``), the gradient-boosting ``max_leaf_nodes``,
    ``learning_rate`` and ``max_iter``, ``min_positives``, ``random_state``.

    Fitted: ``learned_`` (False: the heuristic is in use), ``model_`` (None with the
    heuristic), ``n_examples_``, ``n_positives_``, ``negative_rate_`` (the share of unredeemed
    sent offers among the examples: below 1 when they were sampled, and weighted).
    """

    def __init__(
        self,
        kind: str = "logistic",
        max_leaf_nodes: int = 15,
        learning_rate: float = 0.05,
        max_iter: int = 300,
        min_positives: int = MIN_POSITIVES,
        random_state: int = C.SEED,
    ):
        self.kind = kind
        self.max_leaf_nodes = max_leaf_nodes
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.min_positives = min_positives
        self.random_state = random_state

    def fit(self, examples: pd.DataFrame, y=None) -> RedemptionModel:
        """``examples``: OFFER_FEATURES and ``redeemed``, with ``weight`` per row when sampled
        (:func:`redemption_examples`)."""
        y = examples["redeemed"].to_numpy() if y is None else np.asarray(y)
        weight = examples["weight"].to_numpy(np.float64) if "weight" in examples else None
        self.n_examples_ = len(y)
        self.n_positives_ = int(np.sum(y))
        # the share of the offers not redeemed that the examples kept (1: all of them)
        self.negative_rate_ = float(1.0 / weight[y == 0].max()) if weight is not None and (y == 0).any() else 1.0
        self.learned_ = self.n_positives_ >= self.min_positives and self.n_positives_ < self.n_examples_
        if self.kind not in ("logistic", "gbm"):
            raise ValueError(f"kind must be 'logistic' or 'gbm', not {self.kind!r}")
        if self.learned_ and self.kind == "logistic":
            # the scaler works in place on signed_log's new array: one copy of the examples fewer
            self.model_ = make_pipeline(
                FunctionTransformer(signed_log), StandardScaler(copy=False), LogisticRegression(C=1.0, max_iter=2000)
            )
            self.model_.fit(examples[list(OFFER_FEATURES)], y, logisticregression__sample_weight=weight)
        elif self.learned_:
            self.model_ = HistGradientBoostingClassifier(
                max_leaf_nodes=self.max_leaf_nodes,
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                min_samples_leaf=40,
                l2_regularization=1.0,
                early_stopping=True,
                validation_fraction=0.15,
                n_iter_no_change=30,
                random_state=self.random_state,
            )
            self.model_.fit(examples[list(OFFER_FEATURES)], y, sample_weight=weight)
        else:
            logger.info(
                "%d past redemptions (< %d): P(redeem) from the heuristic", self.n_positives_, self.min_positives
            )
            self.model_ = None
        return self

    def predict_proba(self, X) -> np.ndarray:
        """P(redeem) per row of an OFFER_FEATURES matrix or frame."""
        if not hasattr(self, "learned_"):
            raise NotFittedError("this RedemptionModel is not fitted yet; call fit first")
        if not self.learned_:
            return heuristic_p_redeem(X)
        if self.kind == "logistic":
            # The fitted pipeline in plain numpy: the same numbers, without per-call overhead
            # (ranking one customer must take about a millisecond).
            A = (
                X[list(OFFER_FEATURES)].to_numpy(np.float64)
                if isinstance(X, pd.DataFrame)
                else np.asarray(X, np.float64)
            )
            scaler, lr = self.model_[1], self.model_[2]
            z = ((signed_log(A) - scaler.mean_) / scaler.scale_) @ lr.coef_.ravel() + lr.intercept_[0]
            return 1.0 / (1.0 + np.exp(-z))
        X = X[list(OFFER_FEATURES)] if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=list(OFFER_FEATURES))
        return self.model_.predict_proba(X)[:, 1]

    def predict_pairs(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """P(redeem) for every (customer, offer) of ``affinity_features``' matrices, as a
        customers x offers array: ``predict_proba(feature_matrix(features))``, reshaped.

        The logistic model is summed feature by feature without stacking the pairs: a feature
        that is the same for every customer (or every offer) is transformed once per offer (or
        per customer) and broadcast. Ranking a batch of customers spends most of its time here.
        """
        if not hasattr(self, "learned_"):
            raise NotFittedError("this RedemptionModel is not fitted yet; call fit first")
        shape = np.broadcast_shapes(*(np.shape(features[n]) for n in OFFER_FEATURES))
        if not (self.learned_ and self.kind == "logistic"):
            return self.predict_proba(feature_matrix(features)).reshape(shape)
        scaler, lr = self.model_[1], self.model_[2]
        w = lr.coef_.ravel() / scaler.scale_
        z = np.full(shape, lr.intercept_[0] - float(w @ scaler.mean_))
        for j, name in enumerate(OFFER_FEATURES):
            z += w[j] * signed_log(_compact(features[name]))
        return 1.0 / (1.0 + np.exp(-z))


def _compact(a: np.ndarray) -> np.ndarray:
    """The smallest array that broadcasts to ``a``: one row or column of a broadcast view."""
    a = np.asarray(a)
    if a.ndim == 2 and a.strides[0] == 0:
        a = a[:1]
    if a.ndim == 2 and a.strides[1] == 0:
        a = a[:, :1]
    return a
