"""Small numeric transforms shared by the models' pipelines."""

from __future__ import annotations

import numpy as np


def signed_log(a) -> np.ndarray:
    """``sign(a) * log1p(|a|)``: counts and amounts on a log scale, keeping their sign and 0."""
    a = np.asarray(a, dtype=np.float64)
    return np.sign(a) * np.log1p(np.abs(a))
