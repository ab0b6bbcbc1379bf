"""Small numeric transforms shared by the models' pipelines."""

from __future__ import annotations

import numpy as np
import pandas as pd


def signed_log(a) -> np.ndarray:
    """``sign(a) * log1p(|a|)``: counts and amounts on a log scale, keeping their sign and 0."""
    a = np.asarray(a)
    if a.dtype.kind not in "f":
        a = a.astype(np.float64)
    # one new float64 array, worked on in place, read from the input as it is (float32 examples
    # are not copied to float64 first): the redemption model applies this to millions of
    # examples x 13 features, where each temporary of the plain expression costs as much again
    out = np.abs(a, dtype=np.float64)
    np.log1p(out, out=out)
    return np.copysign(out, a, out=out)


def rankable(key: pd.Series) -> np.ndarray:
    """A numeric key whose ascending order is ``key``'s (text ranked by its sorted order)."""
    if pd.api.types.is_numeric_dtype(key):
        return key.to_numpy(dtype=np.float64)
    return pd.factorize(key.astype(str), sort=True)[0].astype(np.float64)
