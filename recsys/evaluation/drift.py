"""How far a new training's data moved from the champion's: the population stability index
(PSI) of each feature and score over the reference's deciles, beside scipy's two-sample
Kolmogorov-Smirnov test.

PSI reads, by the usual convention: below 0.1 stable, 0.1 to 0.25 a moderate shift, above
``PSI_WARN`` (0.25) a shift worth a look before promoting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

PSI_WARN = 0.25
PROFILE_ROWS = 5000  # customers kept in a bundle's profile: enough for deciles and the KS test
_EPS = 1e-4  # a bin empty on one side counts as this share, so the index stays finite


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` over the reference's quantile bins."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if not len(reference) or not len(current):
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    q = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    p, q = np.clip(p, _EPS, None), np.clip(q, _EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def drift_table(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Per numeric column the two share: PSI, KS statistic and its p-value, and whether it is past PSI_WARN."""
    rows = []
    for col in reference.columns:
        if col not in current or not pd.api.types.is_numeric_dtype(reference[col]):
            continue
        a = reference[col].to_numpy(np.float64, na_value=np.nan)
        b = current[col].to_numpy(np.float64, na_value=np.nan)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if not len(a) or not len(b):
            continue
        ks = stats.ks_2samp(a, b)
        rows.append({"feature": col, "psi": psi(a, b), "ks": float(ks.statistic), "ks_p_value": float(ks.pvalue)})
    out = pd.DataFrame(rows, columns=["feature", "psi", "ks", "ks_p_value"])
    out["shifted"] = out["psi"] > PSI_WARN
    return out.sort_values("psi", ascending=False, ignore_index=True)


def profile_sample(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The numeric columns of up to PROFILE_ROWS rows, as float32: what a bundle keeps of its
    training data to be compared with the next one's."""
    numeric = frame.select_dtypes("number")
    if len(numeric) > PROFILE_ROWS:
        numeric = numeric.sample(PROFILE_ROWS, random_state=seed)
    return numeric.astype("float32").reset_index(drop=True)
