"""Lift from a randomised experiment: treated against control, with Welch intervals.

The input is an experiment table (recsys.incrementality.experiment): one row per unit
(customer and offer, or customer and campaign) with its ``arm`` and outcomes. Per group (an
offer, a campaign, or a Hillstrom e-mail): customers per arm, outcome means, the absolute lift
(difference of means) with its Welch interval, the relative lift with a delta-method interval,
incremental revenue, discount cost and incremental profit per treated customer with its Welch
interval, and a verdict in plain words. The difference of means is unbiased only because the
arm was drawn at random among customers who would all have got the offer: docs/incrementality.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

TREATED, CONTROL = "treated", "control"
ARM, GROUP = "arm", "group"
OUTCOMES = ("offer_spend", "total_spend", "visits", "redemptions")
DEFAULT_MARGIN = 0.3  # gross margin on revenue when the caller gives none (a typical grocer's)


def welch_interval(treated: np.ndarray, control: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Difference of means and its Welch (unequal-variance t) interval; NaN with fewer than two per arm."""
    t, c = np.asarray(treated, dtype=np.float64), np.asarray(control, dtype=np.float64)
    if len(t) < 2 or len(c) < 2:
        return float("nan"), float("nan"), float("nan")
    diff = t.mean() - c.mean()
    vt, vc = t.var(ddof=1) / len(t), c.var(ddof=1) / len(c)
    se = np.sqrt(vt + vc)
    if se == 0:
        return float(diff), float(diff), float(diff)
    df = (vt + vc) ** 2 / (vt**2 / (len(t) - 1) + vc**2 / (len(c) - 1))
    half = stats.t.ppf((1 + level) / 2, df) * se
    return float(diff), float(diff - half), float(diff + half)


def relative_interval(treated: np.ndarray, control: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``mean(treated) / mean(control) - 1`` and its delta-method interval (NaN when the control mean is 0)."""
    t, c = np.asarray(treated, dtype=np.float64), np.asarray(control, dtype=np.float64)
    if len(t) < 2 or len(c) < 2 or c.mean() == 0:
        return float("nan"), float("nan"), float("nan")
    mt, mc = t.mean(), c.mean()
    se = np.sqrt(t.var(ddof=1) / len(t) / mc**2 + mt**2 * c.var(ddof=1) / len(c) / mc**4)
    z = stats.norm.ppf((1 + level) / 2)
    r = mt / mc - 1
    return float(r), float(r - z * se), float(r + z * se)


def verdict(row: dict) -> str:
    """The group's lift in plain words."""
    if row["control"] == 0:
        return "no control group: lift cannot be measured"
    if row["treated"] < 2 or row["control"] < 2:
        return "too few customers in an arm to measure lift"
    p, lo, hi = row["incremental_profit"], row["incremental_profit_low"], row["incremental_profit_high"]
    span = f"${abs(p):,.2f} per customer [{lo:,.2f}, {hi:,.2f}]"
    if lo > 0:
        return f"adds {span}"
    if hi < 0:
        return f"costs {span}"
    return f"no measurable effect on profit ({'+' if p >= 0 else '-'}{span})"


def lift_table(
    experiment: pd.DataFrame,
    *,
    outcomes: tuple[str, ...] = OUTCOMES,
    revenue: str = "total_spend",
    margin: float = DEFAULT_MARGIN,
    level: float = 0.95,
    covariate: str | None = None,
) -> pd.DataFrame:
    """One row per ``group`` of the experiment table (see the module's docstring).

    ``revenue`` names the outcome that is revenue; profit per customer is ``margin`` x revenue
    minus its ``cost`` column (0 when absent: the control arm never pays a discount).
    ``covariate`` (a column measured before assignment, e.g. ``pre_spend``) adjusts every outcome
    by regression on it, pooled over both arms (CUPED): the same lift in expectation, narrower
    intervals when the covariate predicts the outcome; the means reported stay unadjusted.
    """
    missing = [c for c in (GROUP, ARM, revenue, *outcomes, *([covariate] if covariate else [])) if c not in experiment]
    if missing:
        raise ValueError(f"experiment table lacks columns: {', '.join(missing)}")
    if not 0 <= margin <= 1:
        raise ValueError(f"margin must be in [0, 1], not {margin}")
    bad = sorted(set(experiment[ARM]) - {TREATED, CONTROL})
    if bad:
        raise ValueError(f"arm must be {TREATED!r} or {CONTROL!r}, not {bad[0]!r}")
    cost = experiment["cost"] if "cost" in experiment else pd.Series(0.0, index=experiment.index)
    profit = margin * experiment[revenue].astype(float) - cost.astype(float)
    frame = experiment.assign(_profit=profit, _cost=cost.astype(float))
    rows = [_group_row(name, g, outcomes, revenue, level, covariate) for name, g in frame.groupby(GROUP, sort=True)]
    return pd.DataFrame(rows)


def cuped(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` less its regression on ``x`` (centred), the slope pooled over all units: the CUPED
    adjustment, which leaves a difference of means unbiased under randomisation."""
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    var = x.var()
    if len(y) < 3 or var == 0:
        return y
    theta = np.cov(y, x, ddof=0)[0, 1] / var
    return y - theta * (x - x.mean())


def _group_row(name, g: pd.DataFrame, outcomes, revenue: str, level: float, covariate: str | None) -> dict:
    is_t = (g[ARM] == TREATED).to_numpy()
    row = {GROUP: name, "treated": int(is_t.sum()), "control": int((~is_t).sum())}

    def arms(column: str, adjust: bool = True) -> tuple[np.ndarray, np.ndarray]:
        v = g[column].to_numpy(float)
        if adjust and covariate:
            v = cuped(v, g[covariate].to_numpy(float))
        return v[is_t], v[~is_t]

    for o in outcomes:
        t, c = arms(o, adjust=False)
        row[f"{o}_treated_mean"] = float(t.mean()) if len(t) else float("nan")
        row[f"{o}_control_mean"] = float(c.mean()) if len(c) else float("nan")
        row[f"{o}_lift"], row[f"{o}_lift_low"], row[f"{o}_lift_high"] = welch_interval(*arms(o), level)
        rel = relative_interval(t, c, level)
        row[f"{o}_relative_lift"], row[f"{o}_relative_lift_low"], row[f"{o}_relative_lift_high"] = rel
    rev = welch_interval(*arms(revenue), level)
    row["incremental_revenue"], row["incremental_revenue_low"], row["incremental_revenue_high"] = rev
    row["discount_cost"] = float(g["_cost"].to_numpy()[is_t].mean()) if is_t.any() else float("nan")
    prof = welch_interval(*arms("_profit"), level)
    row["incremental_profit"], row["incremental_profit_low"], row["incremental_profit_high"] = prof
    row["total_incremental_profit"] = row["incremental_profit"] * row["treated"]
    row["verdict"] = verdict(row)
    return row
