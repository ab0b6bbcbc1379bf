"""Segment and retention reports: metrics, tables and figures, ready to print, save or log."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsys.constants import CUSTOMER_ID, DEFAULT_HORIZON_DAYS, SEED, TIMESTAMP
from recsys.customers import (
    BehaviourSegmenter,
    bgnbd_scores,
    build_features,
    default_as_of,
    rfm_segments,
    segment_summary,
    segmentation_inputs,
)
from recsys.customers.retention import (
    DEFAULT_ACTIVITY_DAYS,
    cohort_matrix,
    period_retention,
    repeat_purchase_rate,
    rolling_retention,
)
from recsys.data.dataset import Dataset
from recsys.io import atomic_file, json_safe
from recsys.reporting import plots


@dataclass
class Report:
    """What a report found: scalar metrics, tables (CSV) and figures (PNG)."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write metrics.json, <table>.csv and <figure>.png; each file appears whole or not at all."""
        out = Path(out)
        written = []

        def atomic(name: str, write) -> None:
            with atomic_file(out / name) as tmp:
                write(tmp)
            written.append(out / name)

        metrics = json_safe(self.metrics)
        atomic("metrics.json", lambda p: Path(p).write_text(json.dumps(metrics, indent=2)))
        for name, table in self.tables.items():
            atomic(f"{name}.csv", lambda p, t=table: t.to_csv(p))
        for name, fig in self.figures.items():
            atomic(f"{name}.png", lambda p, f=fig: f.savefig(p, dpi=110, format="png"))
        return written

    def close(self) -> None:
        import matplotlib.pyplot as plt

        for fig in self.figures.values():
            plt.close(fig)


def segment_report(
    ds: Dataset,
    as_of: str | pd.Timestamp | None = None,
    *,
    seed: int = SEED,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    k_range: tuple[int, int] = (2, 8),
) -> Report:
    """RFM segments, behavioural clusters and BG/NBD scores of every customer as of a date."""
    as_of = default_as_of(ds.transactions) if as_of is None else pd.Timestamp(as_of)
    features = build_features(
        ds.transactions, as_of, products=ds.products, customers=ds.customers, offer_events=ds.offer_events
    )
    rfm = rfm_segments(features)
    summary = segment_summary(features, rfm)

    X = segmentation_inputs(features, ds.transactions, ds.products, as_of)
    segmenter = BehaviourSegmenter(k_range=k_range, random_state=seed).fit(X)

    scores, bg = bgnbd_scores(ds.transactions, as_of, horizon_days)
    scores = scores.rename(columns={"expected_purchases": f"expected_purchases_{int(horizon_days)}d"})

    customers = features.join(rfm).join(segmenter.labels_).join(scores)
    metrics = {
        "as_of": str(as_of.date()),
        "customers": len(features),
        "clusters_k": int(segmenter.k_),
        "clusters_silhouette": segmenter.silhouette_[segmenter.k_],
        **{f"bgnbd_{k}": v for k, v in bg.params_.items()},
        "bgnbd_log_likelihood": bg.log_likelihood_,
        "mean_p_alive": float(scores["p_alive"].mean()),
        **{
            f"segment_share_{name.lower().replace(' ', '_').replace(chr(39), '')}": float(v)
            for name, v in summary["share"].items()
        },
    }
    profile_cols = [c for c in segmenter.columns_ if c in segmenter.profiles_]
    note = f"{ds.source}, as of {as_of:%Y-%m-%d}; P(alive) over a {horizon_days}-day horizon"
    return Report(
        metrics=metrics,
        tables={
            "segments": summary,
            "clusters": segmenter.profiles_,
            "silhouette": pd.Series(segmenter.silhouette_, name="silhouette").rename_axis("k").to_frame(),
            "customers": customers,
        },
        figures={
            "segment_sizes": plots.segment_sizes(summary, note=note),
            "cluster_profiles": plots.cluster_profiles(segmenter.profiles_, profile_cols, note=note),
            "silhouette_by_k": plots.silhouette_by_k(segmenter.silhouette_, segmenter.k_, note=note),
            "p_alive": plots.histogram(scores["p_alive"], "BG/NBD probability alive", "P(alive)", log=True, note=note),
        },
    )


def retention_report(
    ds: Dataset,
    as_of: str | pd.Timestamp | None = None,
    *,
    activity_days: int = DEFAULT_ACTIVITY_DAYS,
    period_days: int = 90,
) -> Report:
    """Retention, churn and repeat-purchase rates for the period ending at ``as_of``, their
    history, and the cohort retention matrix."""
    as_of = default_as_of(ds.transactions) if as_of is None else pd.Timestamp(as_of)
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
        figures={
            "cohort_retention": plots.cohort_heatmap(cohorts, note=f"{ds.source}, purchases before {as_of:%Y-%m-%d}"),
            "retention_over_time": plots.retention_over_time(
                rolling, note=f"{ds.source}, to {as_of:%Y-%m-%d}; active: bought within {activity_days} days"
            ),
        },
    )
