"""The one bootstrap of the project: resamples as count matrices, percentile intervals, and
the paired interval of a ratio.

A resample of ``n`` units (customers, households) drawn with replacement is the vector of how
often each unit was drawn; a metric of the resample is the metric of the units weighted by
those counts. Every interval in the project (churn metrics, their differences from the
baselines, a campaign's gain over a baseline) comes from these resamples, so the same seed
gives the same resamples everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from recsys import constants as C

MAX_CELLS = 4_000_000  # resamples x units held in memory at once


def check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")


def resample_counts(n: int, n_boot: int, seed: int = C.SEED, max_cells: int = MAX_CELLS) -> Iterator[np.ndarray]:
    """``n_boot`` resamples of ``n`` units, yielded in chunks of (resamples x units) counts.

    Chunks hold at most ``max_cells`` cells, so memory stays bounded for any ``n``.
    """
    rng = np.random.default_rng(seed)
    step = max(1, max_cells // max(n, 1))
    for first in range(0, n_boot, step):
        size = min(step, n_boot - first)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap values (the percentile method)."""
    check_level(level)
    lo, hi = np.quantile(np.asarray(values), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_ratio_interval(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = C.SEED
) -> tuple[float, float, float]:
    """``sum(a) / sum(b) - 1`` and its paired bootstrap interval: units are resampled with
    replacement, the same resample for ``a`` and ``b`` (resamples where ``b`` sums to 0 are
    left out)."""
    check_level(level)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if b.sum() == 0:
        raise ValueError("the baseline sums to 0: a relative gain over it is undefined")
    gains = []
    for counts in resample_counts(len(a), n_boot, seed):
        base = counts @ b
        gains.append((counts @ a)[base > 0] / base[base > 0] - 1)
    lo, hi = percentile_interval(np.concatenate(gains), level)
    return float(a.sum() / b.sum() - 1), lo, hi
