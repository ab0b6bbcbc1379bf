"""The BG/NBD model of repeat buying (Fader, Hardie & Lee, 2005), fitted by maximum likelihood.

Each customer is summarised by ``x`` (repeat purchases: purchase days after the first),
``t_x`` (time from the first to the last purchase) and ``T`` (time from the first purchase to
the end of observation), in units of ``time_unit_days`` days (weeks by default).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from recsys import constants as C
from recsys.customers.history import PurchaseHistory

DAY = pd.Timedelta(days=1)


def rfm_summary(transactions, as_of: str | pd.Timestamp, time_unit_days: float = 7.0) -> pd.DataFrame:
    """(x, t_x, T) per customer from purchases strictly before ``as_of`` (``transactions``: the
    lines, or a recsys.customers.history.PurchaseHistory of them).

    Purchases are counted by distinct calendar day, as in the model's original use.
    """
    as_of = pd.Timestamp(as_of)
    b = PurchaseHistory.of(transactions, baskets_only=True).baskets_before(as_of)
    days = b[[C.CUSTOMER_ID]].assign(day=b["time"].dt.normalize()).drop_duplicates()
    g = days.groupby(C.CUSTOMER_ID)["day"]
    first, last, n = g.min(), g.max(), g.size()
    unit = DAY * time_unit_days
    return pd.DataFrame(
        {
            "x": (n - 1).astype("float64"),
            "t_x": (last - first) / unit,
            "T": (as_of.normalize() - first) / unit,
        }
    )


def _log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


class BGNBD(BaseEstimator):
    """BG/NBD by maximum likelihood in log-parameter space, with an optional L2 penalty.

    Parameters: ``penalizer`` (L2 on the log-parameters), ``time_unit_days`` (the unit of the
    RFM summary's times), ``max_iter`` (of the optimiser).

    Fitted attributes: ``params_`` (dict of r, alpha, a, b), ``log_likelihood_``.
    """

    def __init__(self, penalizer: float = 0.0, time_unit_days: float = 7.0, max_iter: int = 2000):
        self.penalizer = penalizer
        self.time_unit_days = time_unit_days
        self.max_iter = max_iter

    def fit(self, summary: pd.DataFrame, y=None) -> BGNBD:
        for col in ("x", "t_x", "T"):
            if col not in summary:
                raise ValueError(f"summary needs column {col!r} (see rfm_summary)")
        x, t_x, T = (summary[c].to_numpy(dtype="float64") for c in ("x", "t_x", "T"))
        if len(x) == 0:
            raise ValueError("cannot fit BG/NBD on no customers")
        if (t_x > T + 1e-9).any() or (x < 0).any():
            raise ValueError("summary must satisfy 0 <= t_x <= T and x >= 0")
        # Identical customers share one likelihood term.
        keys, _inverse, weights = np.unique(
            np.column_stack([x, t_x, T]), axis=0, return_inverse=True, return_counts=True
        )
        ux, ut, uT = keys.T

        def objective(log_params: np.ndarray) -> float:
            params = np.exp(log_params)
            ll = np.dot(weights, _log_likelihood(params, ux, ut, uT))
            return -(ll - self.penalizer * np.sum(params**2)) / weights.sum()

        start = np.log(np.array([0.5, max(np.mean(T), 1e-3), 1.0, 1.0]))
        result = minimize(
            objective, start, method="L-BFGS-B", options={"maxiter": self.max_iter}, bounds=[(-15, 15)] * 4
        )
        if not np.isfinite(result.fun):
            raise RuntimeError(f"BG/NBD did not converge: {result.message}")
        r, alpha, a, b = np.exp(result.x)
        self.params_ = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}
        self.log_likelihood_ = float(np.dot(weights, _log_likelihood(np.exp(result.x), ux, ut, uT)))
        self.converged_ = bool(result.success)
        return self

    def _arrays(self, summary: pd.DataFrame):
        check_is_fitted(self, "params_")
        p = self.params_
        return (p["r"], p["alpha"], p["a"], p["b"], *(summary[c].to_numpy(dtype="float64") for c in ("x", "t_x", "T")))

    def p_alive(self, summary: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active at the end of observation."""
        r, alpha, a, b, x, t_x, T = self._arrays(summary)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = (
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            )
        log_ratio = np.where(x > 0, log_ratio, -np.inf)
        return pd.Series(np.exp(-np.logaddexp(0.0, log_ratio)), index=summary.index, name="p_alive")

    def expected_purchases(self, summary: pd.DataFrame, days: float) -> pd.Series:
        """Expected purchases (purchase days) in the next ``days`` days."""
        r, alpha, a, b, x, _t_x, T = self._arrays(summary)
        t = days / self.time_unit_days
        z = t / (alpha + T + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        log_base = (r + x) * (np.log(alpha + T) - np.log(alpha + T + t))
        first = (a + b + x - 1) / (a - 1) * (1 - np.exp(log_base) * hyp)
        p_alive = self.p_alive(summary).to_numpy()
        # The numerator of the conditional expectation carries the same 1 / (1 + ...) factor as P(alive).
        return pd.Series(first * p_alive, index=summary.index, name="expected_purchases")

    def customer_scores(self, summary: pd.DataFrame, days: float = 90.0) -> pd.DataFrame:
        """P(alive) and expected purchases over the next ``days`` per customer."""
        return pd.DataFrame(
            {
                "p_alive": self.p_alive(summary),
                f"expected_purchases_{int(days)}d": self.expected_purchases(summary, days),
            }
        )
