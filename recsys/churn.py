"""Churn risk: labels, rolling-origin training sets, a calibrated gradient-boosting model,
baselines, metrics and reason codes.

A customer who bought before ``as_of`` churns when they buy nothing in
``(as_of, as_of + horizon]``. Features come only from data before each snapshot, labels only
from after it; docs/churn.md describes the protocol.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from recsys import constants as C
from recsys.bgnbd import BGNBD, rfm_summary
from recsys.features import FEATURE_COLUMNS, build_features

logger = logging.getLogger(__name__)

DEFAULT_HORIZON_DAYS = 90
MODEL_FEATURES = (*FEATURE_COLUMNS, "p_alive", "expected_purchases")
# Stumps (2 leaves: an additive model of the features) are in the grid: with a few hundred
# churners per snapshot they validate best on The Complete Journey (docs/churn.md).
DEFAULT_PARAM_GRID = {
    "learning_rate": (0.03,),
    "max_leaf_nodes": (2, 5),
    "min_samples_leaf": (50, 200),
}
# Risk can only grow with silence and only fall with recent activity: this keeps trees sensible
# for customers quieter than any seen in training (later snapshots have longer histories).
MONOTONE = {"recency_days": 1, "overdue_ratio": 1, "p_alive": -1, "expected_purchases": -1, "baskets_90d": -1,
            "baskets_30d": -1}
MIN_CHURNERS = 5  # in the training and in the validation snapshots, or fitting is refused
MIN_CHURNERS_EARLY_STOPPING = 40  # fewer: a fixed number of boosting iterations instead
DEFAULT_BANDS = C.RISK_BANDS


def churn_labels(transactions: pd.DataFrame, as_of: str | pd.Timestamp,
                 horizon_days: int = DEFAULT_HORIZON_DAYS) -> pd.Series:
    """1 for customers who bought before ``as_of`` and nothing in ``(as_of, as_of + horizon]``."""
    as_of = pd.Timestamp(as_of)
    t = transactions[C.TIMESTAMP]
    before = pd.Index(transactions.loc[t < as_of, C.CUSTOMER_ID].unique())
    window = (t > as_of) & (t <= as_of + pd.Timedelta(days=horizon_days))
    buyers = pd.Index(transactions.loc[window, C.CUSTOMER_ID].unique())
    labels = pd.Series((~before.isin(buyers)).astype("int64"), index=before, name="churned")
    labels.index.name = C.CUSTOMER_ID
    return labels.sort_index()


def churn_features(transactions: pd.DataFrame, as_of: str | pd.Timestamp, *, products=None, customers=None,
                   offer_events=None, horizon_days: int = DEFAULT_HORIZON_DAYS) -> pd.DataFrame:
    """Customer features plus BG/NBD P(alive) and expected purchases, all from data before ``as_of``."""
    as_of = pd.Timestamp(as_of)
    features = build_features(transactions, as_of, products=products, customers=customers,
                              offer_events=offer_events)
    summary = rfm_summary(transactions, as_of)
    bg = BGNBD(penalizer=0.001).fit(summary)
    features["p_alive"] = bg.p_alive(summary).reindex(features.index)
    features["expected_purchases"] = bg.expected_purchases(summary, horizon_days).reindex(features.index)
    return features


def snapshot_dates(first: str | pd.Timestamp, last: str | pd.Timestamp, every_days: int = 14) -> list[pd.Timestamp]:
    return list(pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq=f"{every_days}D"))


def training_set(ds, snapshots: list[pd.Timestamp], horizon_days: int = DEFAULT_HORIZON_DAYS) -> pd.DataFrame:
    """Features and labels at each snapshot, stacked, with a ``snapshot`` column.

    Every snapshot's label window must lie inside the data.
    """
    last = ds.transactions[C.TIMESTAMP].max()
    frames = []
    for s in snapshots:
        if s + pd.Timedelta(days=horizon_days) > last:
            raise ValueError(f"snapshot {s:%Y-%m-%d}: its {horizon_days}-day label window ends after the data "
                             f"({last:%Y-%m-%d})")
        f = churn_features(ds.transactions, s, products=ds.products, customers=ds.customers,
                           offer_events=ds.offer_events, horizon_days=horizon_days)
        f["churned"] = churn_labels(ds.transactions, s, horizon_days).reindex(f.index)
        f["snapshot"] = s
        frames.append(f.reset_index())
    return pd.concat(frames, ignore_index=True)


def _log_counts(a: np.ndarray) -> np.ndarray:
    return np.sign(a) * np.log1p(np.abs(a))


def logistic_baseline(random_state: int = C.SEED) -> Pipeline:
    return Pipeline([
        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
        ("log", FunctionTransformer(_log_counts)),
        ("scale", StandardScaler()),
        ("model", LogisticRegression(max_iter=2000, C=1.0, random_state=random_state)),
    ])


class EmptyColumnsToZero(TransformerMixin, BaseEstimator):
    """Columns with no value at all in training (e.g. redemption rate before any offer was sent)
    become 0: they carry no information, and gradient boosting cannot bin an all-missing column."""

    def fit(self, X: pd.DataFrame, y=None) -> "EmptyColumnsToZero":
        self.empty_ = [c for c in X.columns if X[c].isna().all()]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.assign(**{c: 0.0 for c in self.empty_}) if self.empty_ else X

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_


class ChurnModel(BaseEstimator):
    """Gradient boosting with hyperparameters chosen on a temporal validation, refitted on
    every training snapshot and calibrated (Platt scaling) out of fold.

    ``fit`` takes a training set from :func:`training_set`. Selection: each grid point is fitted
    on the snapshots whose label windows end before the latest snapshot starts and scored (average
    precision) on the latest, so validation is strictly later than training. The chosen
    parameters are then refitted on all snapshots; calibration folds split by snapshot.
    """

    def __init__(self, horizon_days: int = DEFAULT_HORIZON_DAYS, param_grid: dict | None = None,
                 features: tuple[str, ...] = MODEL_FEATURES, random_state: int = C.SEED):
        self.horizon_days = horizon_days
        self.param_grid = param_grid
        self.features = features
        self.random_state = random_state

    def _split(self, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        snaps = sorted(data["snapshot"].unique())
        valid_at = snaps[-1]
        train = data[data["snapshot"] + pd.Timedelta(days=self.horizon_days) <= valid_at]
        if train.empty:
            raise ValueError(f"no training snapshot ends its {self.horizon_days}-day label window before the "
                             f"validation snapshot {pd.Timestamp(valid_at):%Y-%m-%d}; add earlier snapshots")
        return train, data[data["snapshot"] == valid_at]

    def _booster(self, positives: int, **params) -> Pipeline:
        # Early stopping holds out 15% stratified; with few churners that split is too thin to
        # trust (or impossible), so a fixed, shorter schedule is used instead.
        stop_early = positives >= MIN_CHURNERS_EARLY_STOPPING
        gbm = HistGradientBoostingClassifier(
            max_iter=400 if stop_early else 100, early_stopping=stop_early, validation_fraction=0.15,
            n_iter_no_change=30,
            l2_regularization=1.0, random_state=self.random_state,
            monotonic_cst={k: v for k, v in MONOTONE.items() if k in self.features}, **params)
        return Pipeline([("empty", EmptyColumnsToZero().set_output(transform="pandas")), ("gbm", gbm)])

    def fit(self, data: pd.DataFrame, y=None) -> "ChurnModel":
        missing = [c for c in (*self.features, "snapshot", "churned") if c not in data]
        if missing:
            raise ValueError(f"training set lacks columns: {', '.join(missing)}")
        train, valid = self._split(data)
        for name, part in (("training", train), ("validation", valid)):
            churners = int(part["churned"].sum())
            if churners < MIN_CHURNERS or churners == len(part):
                raise ValueError(f"the {name} snapshots hold {churners} churners among {len(part)} customers; a "
                                 f"churn model needs at least {MIN_CHURNERS} of each: use more or later snapshots "
                                 "or a shorter horizon")
        X_tr, y_tr = train[list(self.features)], train["churned"]
        X_va, y_va = valid[list(self.features)], valid["churned"]
        grid = self.param_grid or DEFAULT_PARAM_GRID
        names = sorted(grid)
        self.validation_scores_ = []
        best, best_score = None, -np.inf
        for values in itertools.product(*(grid[n] for n in names)):
            params = dict(zip(names, values))
            model = self._booster(int(y_tr.sum()), **params).fit(X_tr, y_tr)
            score = average_precision_score(y_va, model.predict_proba(X_va)[:, 1])
            self.validation_scores_.append({**params, "average_precision": score})
            if score > best_score:
                best, best_score, best_model = params, score, model
        self.best_params_ = best
        self.validation_average_precision_ = float(best_score)
        self.train_snapshots_ = sorted(pd.Timestamp(s) for s in train["snapshot"].unique())
        self.validation_snapshot_ = pd.Timestamp(valid["snapshot"].iloc[0])
        X_all, y_all = data[list(self.features)], data["churned"]
        snaps = data["snapshot"].rank(method="dense").astype(int).to_numpy()
        folds = min(3, len(np.unique(snaps)))
        if folds >= 2:
            from sklearn.model_selection import GroupKFold

            splits = list(GroupKFold(n_splits=folds).split(X_all, y_all, groups=snaps))
            per_fold = int(y_all.sum()) * (folds - 1) // folds
            self.model_ = CalibratedClassifierCV(self._booster(per_fold, **best), method="sigmoid",
                                                 cv=splits).fit(X_all, y_all)
        else:
            self.model_ = CalibratedClassifierCV(FrozenEstimator(best_model), method="sigmoid").fit(X_va, y_va)
        self.feature_names_ = list(self.features)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(X[self.feature_names_])

    def predict_risk(self, X: pd.DataFrame) -> pd.Series:
        """Churn probability per customer."""
        return pd.Series(self.predict_proba(X)[:, 1], index=X.index, name="churn_probability")


# ---------------------------------------------------------------- evaluation


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
    for top in (0.1, 0.2):
        lift, capture = lift_and_capture(y, score, top)
        out[f"lift_top{int(top * 100)}"] = float(lift)
        out[f"capture_top{int(top * 100)}"] = float(capture)
    return out


def per_segment_auc(y: pd.Series, score: pd.Series, segments: pd.Series, min_each: int = 5) -> pd.DataFrame:
    """ROC-AUC within each segment that has at least ``min_each`` churners and stayers."""
    rows = []
    for name, idx in segments.groupby(segments).groups.items():
        ys, ss = y.loc[idx], score.loc[idx]
        pos = int(ys.sum())
        auc = float(roc_auc_score(ys, ss)) if pos >= min_each and len(ys) - pos >= min_each else float("nan")
        rows.append({"segment": name, "customers": len(ys), "churners": pos, "roc_auc": auc})
    return pd.DataFrame(rows).set_index("segment")


_BOOTSTRAP_METRICS = ("roc_auc", "average_precision")


_BOOTSTRAP_CELLS = 4_000_000  # resamples x customers held in memory at once


def _bootstrap(y: np.ndarray, scores: dict[str, np.ndarray], n_boot: int, level: float,
               seed: int) -> dict[str, dict[str, np.ndarray]]:
    """ROC-AUC and average precision of every scorer on ``n_boot`` resamples of the customers
    with replacement, the same resamples for every scorer. Resamples without both classes are
    left out (the metrics are undefined there). A resample is the customers weighted by how
    often each was drawn; resamples are drawn in chunks, so memory stays bounded for any
    number of customers."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    y = np.asarray(y)
    n = len(y)
    rng = np.random.default_rng(seed)
    step = max(1, _BOOTSTRAP_CELLS // max(n, 1))
    parts: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in scores}
    for first in range(0, n_boot, step):
        size = min(step, n_boot - first)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        positives = counts @ (y == 1)
        counts = counts[(positives > 0) & (positives < n)]
        if len(counts):
            for name, score in scores.items():
                parts[name].append(weighted_ranking_metrics(y, score, counts))
    if not parts[next(iter(scores))]:
        raise ValueError("no bootstrap resample holds both churners and stayers: the labels need both classes")
    return {name: {m: np.concatenate([p[m] for p in chunks]) for m in _BOOTSTRAP_METRICS}
            for name, chunks in parts.items()}


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


def bootstrap_interval(y: np.ndarray, score: np.ndarray, metric: str = "average_precision", n_boot: int = 500,
                       level: float = 0.95, seed: int = C.SEED) -> tuple[float, float]:
    """The ``level`` bootstrap interval of one scorer's ``roc_auc`` or ``average_precision``."""
    if metric not in _BOOTSTRAP_METRICS:
        raise ValueError(f"metric must be one of {', '.join(_BOOTSTRAP_METRICS)}, not {metric!r}")
    values = _bootstrap(y, {"score": score}, n_boot, level, seed)["score"][metric]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_differences(y: np.ndarray, scores: dict[str, np.ndarray], reference: str = "model",
                          n_boot: int = 500, level: float = 0.95, seed: int = C.SEED) -> pd.DataFrame:
    """Paired bootstrap of ``reference`` minus every other scorer, for ROC-AUC and average precision.

    Customers are resampled with replacement, the same sample for both scorers, ``n_boot`` times.
    One row per (baseline, metric): the observed difference and its ``level`` interval. An
    interval holding 0 means the evaluation cannot tell the two apart.
    """
    y = np.asarray(y)
    if reference not in scores:
        raise ValueError(f"reference {reference!r} is not among the scores ({', '.join(scores)})")
    boot = _bootstrap(y, scores, n_boot, level, seed)
    observed = {name: weighted_ranking_metrics(y, score, np.ones((1, len(y)))) for name, score in scores.items()}
    rows = []
    for name in scores:
        if name == reference:
            continue
        for metric in _BOOTSTRAP_METRICS:
            lo, hi = np.quantile(boot[reference][metric] - boot[name][metric], [(1 - level) / 2, (1 + level) / 2])
            rows.append({"baseline": name, "metric": metric,
                         "difference": float(observed[reference][metric][0] - observed[name][metric][0]),
                         "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows)


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
        y = self.scores["churned"].to_numpy()
        boot = _bootstrap(y, {name: self.scores[name].to_numpy() for name in self.metrics}, n_boot, level, seed)
        q = [(1 - level) / 2, (1 + level) / 2]
        out = {}
        for metric in _BOOTSTRAP_METRICS:
            out[f"model_{metric}_low"], out[f"model_{metric}_high"] = map(float, np.quantile(boot["model"][metric], q))
            for name in self.metrics:
                if name != "model":
                    key = f"model_minus_{name}_{metric}"
                    out[key] = self.metrics["model"][metric] - self.metrics[name][metric]
                    out[f"{key}_low"], out[f"{key}_high"] = map(
                        float, np.quantile(boot["model"][metric] - boot[name][metric], q))
        return out


def evaluate(model: ChurnModel, eval_set: pd.DataFrame, baseline_train: pd.DataFrame,
             segments: pd.Series | None = None) -> ChurnEvaluation:
    """Score the model and the baselines on ``eval_set`` (one snapshot)."""
    y = eval_set["churned"].to_numpy()
    X = eval_set[list(model.feature_names_)]
    logistic = logistic_baseline(model.random_state).fit(baseline_train[list(model.feature_names_)],
                                                         baseline_train["churned"])
    scores = pd.DataFrame({
        C.CUSTOMER_ID: eval_set[C.CUSTOMER_ID].to_numpy(),
        "churned": y,
        "model": model.predict_proba(X)[:, 1],
        "recency_rule": eval_set["recency_days"].to_numpy(),
        "bgnbd": 1.0 - eval_set["p_alive"].to_numpy(),
        "logistic": logistic.predict_proba(X)[:, 1],
    })
    metrics = {name: classification_metrics(y, scores[name].to_numpy())
               for name in ("model", "recency_rule", "bgnbd", "logistic")}
    frac, mean_pred = calibration_curve(y, scores["model"], n_bins=10, strategy="quantile")
    calibration = pd.DataFrame({"mean_predicted": mean_pred, "observed_rate": frac})
    seg_auc = pd.DataFrame()
    if segments is not None:
        idx = scores.set_index(C.CUSTOMER_ID)
        seg_auc = per_segment_auc(idx["churned"], idx["model"], segments.reindex(idx.index))
    return ChurnEvaluation(pd.Timestamp(eval_set["snapshot"].iloc[0]), metrics, calibration, seg_auc, scores)


# ---------------------------------------------------------------- per customer


def risk_band(p: pd.Series | np.ndarray, bands: tuple[float, float] = DEFAULT_BANDS) -> np.ndarray:
    low, high = bands
    if not 0 < low < high < 1:
        raise ValueError(f"risk bands must satisfy 0 < low < high < 1, got {bands}")
    p = np.asarray(p, dtype=float)
    return np.where(p >= high, "high", np.where(p >= low, "medium", "low"))


def _days(v: float) -> str:
    v = int(round(v))
    return f"{v} day" if v == 1 else f"{v} days"


def reasons(features: pd.DataFrame, n: int = 3) -> pd.Series:
    """Up to ``n`` reasons per customer, in words, most telling first.

    Each rule fires on a feature pattern and carries a strength; the strongest win. Vectorised:
    one pass per rule over all customers.
    """
    f = features
    recency = f["recency_days"].to_numpy(dtype=float)
    gap = f["gap_mean_days"].to_numpy(dtype=float)
    overdue = f["overdue_ratio"].to_numpy(dtype=float)
    trend = f["trend_90d"].to_numpy(dtype=float)
    freq = f["frequency"].to_numpy(dtype=float)
    spend30 = f["spend_30d"].to_numpy(dtype=float)
    tenure = np.maximum(f["tenure_days"].to_numpy(dtype=float), 1.0)
    usual30 = f["monetary_total"].to_numpy(dtype=float) / tenure * 30
    p_alive = f["p_alive"].to_numpy(dtype=float) if "p_alive" in f else np.full(len(f), np.nan)
    candidates: list[tuple[np.ndarray, np.ndarray, list[str]]] = []

    def rule(mask: np.ndarray, strength: np.ndarray, text) -> None:
        mask = np.nan_to_num(mask.astype(float), nan=0.0).astype(bool)
        idx = np.flatnonzero(mask)
        texts = [""] * len(f)
        for i in idx:
            texts[i] = text(i)
        candidates.append((mask, np.where(mask, strength, -np.inf), texts))

    with np.errstate(invalid="ignore", divide="ignore"):
        rule(overdue > 1.5, overdue,
             lambda i: f"no purchase for {_days(recency[i])}; usually buys every {_days(max(gap[i], 1))}")
        rule(np.isnan(gap) & (recency > 30), recency / 30,
             lambda i: f"one visit only, {_days(recency[i])} ago")
        rule(trend < -0.25, -trend * 3,
             lambda i: f"visits down {abs(trend[i]) * 100:.0f}% in the last 90 days vs the 90 before")
        rule((usual30 > 0) & (spend30 < 0.5 * usual30) & (freq > 2), (1 - spend30 / usual30) * 2,
             lambda i: f"spent ${spend30[i]:,.0f} in the last 30 days; usually ${usual30[i]:,.0f}")
        rule(p_alive < 0.5, (1 - p_alive) * 3,
             lambda i: f"purchase pattern suggests they may have stopped (P(alive) {p_alive[i]:.2f})")
        rule((freq <= 3) & (tenure < 120), np.full(len(f), 0.8),
             lambda i: f"new customer with {int(freq[i])} visit{'s' if freq[i] != 1 else ''} so far")
        rule((overdue <= 1.0) & (freq > 3), np.full(len(f), 0.1),
             lambda i: f"buys regularly: last purchase {_days(recency[i])} ago, usually every {_days(max(gap[i], 1))}")
        rule(trend > 0.25, trend * 0.2, lambda i: "visiting more often lately")

    strengths = np.column_stack([c[1] for c in candidates])
    order = np.argsort(-strengths, axis=1, kind="stable")[:, :n]
    out = []
    for i in range(len(f)):
        out.append([candidates[j][2][i] for j in order[i] if np.isfinite(strengths[i, j])])
    return pd.Series(out, index=f.index, name="reasons")


def score_customers(model: ChurnModel, features: pd.DataFrame, bands: tuple[float, float] = DEFAULT_BANDS) -> pd.DataFrame:
    """Probability, band and reasons for every customer of ``features`` (indexed by customer_id)."""
    p = model.predict_risk(features)
    return pd.DataFrame({
        "churn_probability": p,
        "risk_band": risk_band(p, bands),
        "reasons": reasons(features),
        "p_alive": features.get("p_alive"),
    })
