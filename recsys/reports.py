"""Segment and retention reports: metrics, tables and figures, ready to print, save or log."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsys import plots
from recsys.bgnbd import BGNBD, rfm_summary
from recsys.constants import CUSTOMER_ID, SEED, TIMESTAMP
from recsys.data.dataset import Dataset
from recsys.features import build_features, department_shares
from recsys.retention import DEFAULT_ACTIVITY_DAYS, cohort_matrix, period_retention, repeat_purchase_rate, \
    rolling_retention
from recsys.segments import BehaviourSegmenter, rfm_segments, segment_summary


@dataclass
class Report:
    """What a report found: scalar metrics, tables (CSV) and figures (PNG)."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write metrics.json, <table>.csv and <figure>.png; each file appears whole or not at all."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []

        def atomic(name: str, write) -> None:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            os.close(fd)
            try:
                write(tmp)
                os.replace(tmp, out / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(out / name)

        metrics = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.metrics.items()}
        atomic("metrics.json", lambda p: Path(p).write_text(json.dumps(metrics, indent=2, default=str)))
        for name, table in self.tables.items():
            atomic(f"{name}.csv", lambda p, t=table: t.to_csv(p))
        for name, fig in self.figures.items():
            atomic(f"{name}.png", lambda p, f=fig: f.savefig(p, dpi=110, format="png"))
        return written

    def close(self) -> None:
        import matplotlib.pyplot as plt

        for fig in self.figures.values():
            plt.close(fig)


def default_as_of(ds: Dataset) -> pd.Timestamp:
    """The day after the last transaction: every purchase counts."""
    return ds.transactions[TIMESTAMP].max().normalize() + pd.Timedelta(days=1)


def segment_report(ds: Dataset, as_of: str | pd.Timestamp | None = None, *, seed: int = SEED,
                   horizon_days: int = 90, k_range: tuple[int, int] = (2, 8)) -> Report:
    """RFM segments, behavioural clusters and BG/NBD scores of every customer as of a date."""
    as_of = default_as_of(ds) if as_of is None else pd.Timestamp(as_of)
    features = build_features(ds.transactions, as_of, products=ds.products, customers=ds.customers,
                              offer_events=ds.offer_events)
    rfm = rfm_segments(features)
    summary = segment_summary(features, rfm)

    X = features
    if ds.products is not None and "department" in ds.products:
        shares = department_shares(ds.transactions, ds.products, as_of)
        X = features.join(shares, how="left").fillna({c: 0.0 for c in shares.columns})
    segmenter = BehaviourSegmenter(k_range=k_range, random_state=seed).fit(X)

    summary_bg = rfm_summary(ds.transactions, as_of)
    bg = BGNBD(penalizer=0.001).fit(summary_bg)
    scores = bg.customer_scores(summary_bg, days=horizon_days)

    customers = features.join(rfm).join(segmenter.labels_).join(scores)
    metrics = {
        "as_of": str(as_of.date()),
        "customers": int(len(features)),
        "clusters_k": int(segmenter.k_),
        "clusters_silhouette": segmenter.silhouette_[segmenter.k_],
        **{f"bgnbd_{k}": v for k, v in bg.params_.items()},
        "bgnbd_log_likelihood": bg.log_likelihood_,
        "mean_p_alive": float(scores["p_alive"].mean()),
        **{f"segment_share_{name.lower().replace(' ', '_').replace(chr(39), '')}": float(v)
           for name, v in summary["share"].items()},
    }
    profile_cols = [c for c in segmenter.columns_ if c in segmenter.profiles_]
    return Report(
        metrics=metrics,
        tables={"segments": summary, "clusters": segmenter.profiles_,
                "silhouette": pd.Series(segmenter.silhouette_, name="silhouette").rename_axis("k").to_frame(),
                "customers": customers},
        figures={"segment_sizes": plots.segment_sizes(summary),
                 "cluster_profiles": plots.cluster_profiles(segmenter.profiles_, profile_cols),
                 "silhouette_by_k": plots.silhouette_by_k(segmenter.silhouette_, segmenter.k_),
                 "p_alive": plots.histogram(scores["p_alive"], "BG/NBD probability alive", "P(alive)")},
    )


def retention_report(ds: Dataset, as_of: str | pd.Timestamp | None = None, *,
                     activity_days: int = DEFAULT_ACTIVITY_DAYS, period_days: int = 90) -> Report:
    """Retention, churn and repeat-purchase rates for the period ending at ``as_of``, their
    history, and the cohort retention matrix."""
    as_of = default_as_of(ds) if as_of is None else pd.Timestamp(as_of)
    tx = ds.transactions[ds.transactions[TIMESTAMP] < as_of]
    start = as_of - pd.Timedelta(days=period_days)
    p = period_retention(tx, start, as_of, activity_days)
    rolling = rolling_retention(tx, activity_days=activity_days, period_days=period_days)
    cohorts = cohort_matrix(tx)
    metrics = {
        "as_of": str(as_of.date()),
        "period_start": str(start.date()),
        "activity_days": activity_days,
        "active_at_start": p.active_at_start,
        "active_at_end": p.active_at_end,
        "new_customers": p.new_customers,
        "retention_rate": p.retention_rate,
        "churn_rate": p.churn_rate,
        "repeat_purchase_rate": repeat_purchase_rate(tx, start, as_of),
        "customers": int(tx[CUSTOMER_ID].nunique()),
    }
    return Report(
        metrics=metrics,
        tables={"retention_over_time": rolling, "cohorts": cohorts},
        figures={"cohort_retention": plots.cohort_heatmap(cohorts),
                 "retention_over_time": plots.retention_over_time(rolling)},
    )
