"""Customer segments: RFM scores mapped to named marketing segments, and behavioural clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from recsys.constants import SEED

# RFM segment rules on the recency score R and the frequency-monetary score FM (both 1..5).
# Every (R, FM) cell maps to exactly one segment; docs/features.md shows the same table.
RFM_SEGMENTS = (
    # name, R scores, FM scores
    ("Champions", (5,), (4, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential loyalists", (4, 5), (2, 3)),
    ("New", (5,), (1,)),
    ("Promising", (4,), (1,)),
    ("Need attention", (3,), (3,)),
    ("About to sleep", (3,), (1, 2)),
    ("Can't lose them", (1, 2), (5,)),
    ("At risk", (1, 2), (3, 4)),
    ("Hibernating", (1, 2), (1, 2)),
    ("Lost", (1,), (1,)),
)
SEGMENT_NAMES = tuple(name for name, _, _ in RFM_SEGMENTS)


def _segment_lookup() -> dict[tuple[int, int], str]:
    table: dict[tuple[int, int], str] = {}
    for name, rs, fms in RFM_SEGMENTS:
        for r in rs:
            for fm in fms:
                # Later rules carve exceptions out of earlier ones (Lost out of Hibernating).
                table[(r, fm)] = name
    assert len(table) == 25, "RFM rules must cover every (R, FM) cell"
    return table


_LOOKUP = _segment_lookup()


def quintile_score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Scores 1..5 by quintile of rank (ties share the average rank)."""
    pct = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(pct * 5).clip(1, 5).astype("int64")


def rfm_segments(features: pd.DataFrame) -> pd.DataFrame:
    """R, F, M and FM scores and the named segment of each customer.

    R scores recency (recent is 5), F frequency, M total spend; FM is the mean of F and M
    rounded half up.
    """
    out = pd.DataFrame(index=features.index)
    out["r_score"] = quintile_score(features["recency_days"], higher_is_better=False)
    out["f_score"] = quintile_score(features["frequency"])
    out["m_score"] = quintile_score(features["monetary_total"])
    out["fm_score"] = np.floor((out["f_score"] + out["m_score"]) / 2 + 0.5).astype("int64")
    out["segment"] = [_LOOKUP[(r, fm)] for r, fm in zip(out["r_score"], out["fm_score"])]
    return out


def segment_summary(features: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Size, share and typical behaviour of each RFM segment, in rule-table order."""
    joined = features.join(segments["segment"])
    summary = joined.groupby("segment").agg(
        customers=("frequency", "size"),
        recency_days=("recency_days", "median"),
        frequency=("frequency", "median"),
        monetary_total=("monetary_total", "median"),
        total_spend=("monetary_total", "sum"),
    )
    summary["share"] = summary["customers"] / summary["customers"].sum()
    summary["spend_share"] = summary["total_spend"] / summary["total_spend"].sum()
    return summary.reindex([s for s in SEGMENT_NAMES if s in summary.index])


DEFAULT_CLUSTER_FEATURES = (
    "recency_days",
    "frequency",
    "monetary_mean_basket",
    "gap_mean_days",
    "category_breadth",
    "discount_share",
)
_LOG_FEATURES = (
    "recency_days",
    "frequency",
    "monetary_mean_basket",
    "monetary_total",
    "gap_mean_days",
    "category_breadth",
    "tenure_days",
)


class BehaviourSegmenter(BaseEstimator):
    """K-means on scaled behavioural features, k chosen by silhouette over ``k_range``.

    Columns named ``share_*`` (department spend shares) are used along with ``features``.
    Skewed counts and amounts are log-transformed before scaling.

    Parameters: ``features`` (the behavioural columns), ``k_range`` (the k tried, both ends
    included), ``random_state``, ``silhouette_sample`` (customers the silhouette is computed on).

    Fitted: ``columns_`` (used), ``silhouette_`` (per k), ``k_`` (chosen), ``pipeline_``,
    ``labels_`` (cluster per customer), ``profiles_`` (mean features per cluster).
    """

    def __init__(
        self,
        features: tuple[str, ...] = DEFAULT_CLUSTER_FEATURES,
        k_range: tuple[int, int] = (2, 8),
        random_state: int = SEED,
        silhouette_sample: int = 5000,
    ):
        self.features = features
        self.k_range = k_range
        self.random_state = random_state
        self.silhouette_sample = silhouette_sample

    def _columns(self, X: pd.DataFrame) -> list[str]:
        missing = [c for c in self.features if c not in X.columns]
        if missing:
            raise ValueError(f"features missing for segmentation: {', '.join(missing)}")
        return [*self.features, *sorted(c for c in X.columns if c.startswith("share_"))]

    def _pipeline(self, columns: list[str], k: int) -> Pipeline:
        log_idx = [i for i, c in enumerate(columns) if c in _LOG_FEATURES]

        def log_some(a: np.ndarray) -> np.ndarray:
            a = a.copy()
            a[:, log_idx] = np.log1p(np.clip(a[:, log_idx], 0, None))
            return a

        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("log", FunctionTransformer(log_some)),
                ("scale", StandardScaler()),
                ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=self.random_state)),
            ]
        )

    def fit(self, X: pd.DataFrame, y=None) -> BehaviourSegmenter:
        lo, hi = self.k_range
        if lo < 2 or hi < lo:
            raise ValueError(f"k_range must be (low >= 2, high >= low), got {self.k_range}")
        self.columns_ = self._columns(X)
        data = X[self.columns_].astype("float64")
        if len(data) <= hi:
            raise ValueError(f"need more than {hi} customers to try k up to {hi}, got {len(data)}")
        self.silhouette_ = {}
        fitted = {}
        sample = min(self.silhouette_sample, len(data))
        for k in range(lo, hi + 1):
            pipe = self._pipeline(self.columns_, k).fit(data)
            scaled = pipe[:-1].transform(data)
            self.silhouette_[k] = float(
                silhouette_score(scaled, pipe[-1].labels_, sample_size=sample, random_state=self.random_state)
            )
            fitted[k] = pipe
        self.k_ = max(self.silhouette_, key=lambda k: (self.silhouette_[k], -k))
        self.pipeline_ = fitted[self.k_]
        labels = self._relabel(self.pipeline_[-1].labels_, data)
        self.labels_ = pd.Series(labels, index=X.index, name="cluster")
        self.profiles_ = self._profiles(data, labels)
        return self

    def _relabel(self, labels: np.ndarray, data: pd.DataFrame) -> np.ndarray:
        """Number clusters by size (0 is the largest) so labels are stable and readable."""
        counts = np.bincount(labels, minlength=self.k_)
        order = np.lexsort((np.arange(self.k_), -counts))
        self.label_map_ = np.empty(self.k_, dtype=int)
        self.label_map_[order] = np.arange(self.k_)
        return self.label_map_[labels]

    def predict(self, X: pd.DataFrame) -> pd.Series:
        check_is_fitted(self, "pipeline_")
        labels = self.pipeline_.predict(X[self.columns_].astype("float64"))
        return pd.Series(self.label_map_[labels], index=X.index, name="cluster")

    def _profiles(self, data: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
        medians = data.groupby(labels).median()
        overall = data.median()
        spread = data.std(ddof=0).replace(0, 1.0)
        rows = []
        for cluster, centre in medians.iterrows():
            z = (centre - overall) / spread
            top = z.abs().sort_values(ascending=False).index[:3]
            words = [f"{'high' if z[c] > 0 else 'low'} {c} ({centre[c]:.3g} vs {overall[c]:.3g})" for c in top]
            rows.append(
                {
                    "cluster": int(cluster),
                    "customers": int((labels == cluster).sum()),
                    "description": "; ".join(words),
                    **centre.to_dict(),
                }
            )
        return pd.DataFrame(rows).set_index("cluster")
