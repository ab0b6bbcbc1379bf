"""Per customer: the risk band of a churn probability and the reasons for it, in words."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from recsys import constants as C

logger = logging.getLogger(__name__)


def risk_band(p: pd.Series | np.ndarray, bands: Mapping[str, float] = C.RISK_BANDS) -> np.ndarray:
    """The band of each churn probability: the last of ``bands`` (name -> the probability it
    starts from, rising from 0) whose start it reaches."""
    names, starts = list(bands), np.asarray(list(bands.values()), dtype=float)
    if len(starts) == 0 or starts[0] != 0 or not (np.diff(starts) > 0).all() or starts[-1] >= 1:
        raise ValueError(f"risk bands must start at 0 and rise below 1, got {dict(bands)}")
    p = np.asarray(p, dtype=float)
    return np.asarray(names, dtype=object)[np.searchsorted(starts, p, side="right") - 1]


def _days(v: float) -> str:
    v = int(round(v))
    return f"{v} day" if v == 1 else f"{v} days"


def _rules(f: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray, Callable[[int], str]]]:
    """Every reason rule: (code, where it fires, its strength, its words for customer i)."""
    recency = f["recency_days"].to_numpy(dtype=float)
    gap = f["gap_mean_days"].to_numpy(dtype=float)
    overdue = f["overdue_ratio"].to_numpy(dtype=float)
    trend = f["trend_90d"].to_numpy(dtype=float)
    freq = f["frequency"].to_numpy(dtype=float)
    spend30 = f["spend_30d"].to_numpy(dtype=float)
    tenure = np.maximum(f["tenure_days"].to_numpy(dtype=float), 1.0)
    usual30 = f["monetary_total"].to_numpy(dtype=float) / tenure * 30
    p_alive = f["p_alive"].to_numpy(dtype=float) if "p_alive" in f else np.full(len(f), np.nan)
    return [
        (
            "overdue",
            overdue > 1.5,
            overdue,
            lambda i: f"no purchase for {_days(recency[i])}; usually buys every {_days(max(gap[i], 1))}",
        ),
        (
            "single_visit",
            np.isnan(gap) & (recency > 30),
            recency / 30,
            lambda i: f"one visit only, {_days(recency[i])} ago",
        ),
        (
            "visits_down",
            trend < -0.25,
            -trend * 3,
            lambda i: f"visits down {abs(trend[i]) * 100:.0f}% in the last 90 days vs the 90 before",
        ),
        (
            "spend_down",
            (usual30 > 0) & (spend30 < 0.5 * usual30) & (freq > 2),
            (1 - spend30 / usual30) * 2,
            lambda i: f"spent ${spend30[i]:,.0f} in the last 30 days; usually ${usual30[i]:,.0f}",
        ),
        (
            "may_have_stopped",
            p_alive < 0.5,
            (1 - p_alive) * 3,
            lambda i: f"purchase pattern suggests they may have stopped (P(alive) {p_alive[i]:.2f})",
        ),
        (
            "new_customer",
            (freq <= 3) & (tenure < 120),
            np.full(len(f), 0.8),
            lambda i: f"new customer with {int(freq[i])} visit{'s' if freq[i] != 1 else ''} so far",
        ),
        (
            "regular",
            (overdue <= 1.0) & (freq > 3),
            np.full(len(f), 0.1),
            lambda i: f"buys regularly: last purchase {_days(recency[i])} ago, usually every {_days(max(gap[i], 1))}",
        ),
        ("visits_up", trend > 0.25, trend * 0.2, lambda i: "visiting more often lately"),
    ]


def reasons(features: pd.DataFrame, n: int = 3) -> pd.Series:
    """Up to ``n`` reasons per customer, in words, most telling first.

    Each rule fires on a feature pattern and carries a strength; the strongest win. Vectorised:
    one pass per rule over all customers.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        rules = _rules(features)
    strengths, texts = [], []
    for _code, mask, strength, text in rules:
        mask = np.nan_to_num(mask.astype(float), nan=0.0).astype(bool)
        words = [""] * len(features)
        for i in np.flatnonzero(mask):
            words[i] = text(i)
        strengths.append(np.where(mask, strength, -np.inf))
        texts.append(words)
    strengths = np.column_stack(strengths)
    order = np.argsort(-strengths, axis=1, kind="stable")[:, :n]
    out = [[texts[j][i] for j in order[i] if np.isfinite(strengths[i, j])] for i in range(len(features))]
    return pd.Series(out, index=features.index, name="reasons")
