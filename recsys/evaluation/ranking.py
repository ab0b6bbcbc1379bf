"""Top-k ranking metrics with binary relevance (docs/offers.md states every definition).

For one customer with recommended list ``r`` (best first) and relevant set ``R``:

- precision@k = |r[:k] ∩ R| / k
- recall@k = |r[:k] ∩ R| / |R|   (denominator: every relevant item, even beyond k)
- hit@k = 1 if r[:k] ∩ R is not empty
- NDCG@k = DCG(r[:k]) / DCG(ideal), gains 1/log2(rank + 1), ideal = min(|R|, k) hits on top
- AP@k = Σ_{i ≤ k, r[i] ∈ R} precision@i / min(|R|, k)

Each is averaged over customers with at least one relevant item. Catalog coverage is the share
of the catalog that appears in at least one customer's top k.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from recsys import constants as C
from recsys.constants import at_k

_DISCOUNT = 1.0 / np.log2(np.arange(2, 1002))


def user_metrics(recommended: Sequence, relevant: Iterable, k: int) -> dict[str, float] | None:
    """Metrics for one customer, or None when nothing is relevant."""
    rel = set(relevant)
    if not rel:
        return None
    top = list(recommended)[:k]
    hits = np.fromiter((item in rel for item in top), dtype=bool, count=len(top))
    n_hits = int(hits.sum())
    dcg = float(_DISCOUNT[: len(top)][hits].sum())
    idcg = float(_DISCOUNT[: min(len(rel), k)].sum())
    precision_at = np.cumsum(hits) / np.arange(1, len(top) + 1)
    ap = float((precision_at * hits).sum() / min(len(rel), k))
    return {
        "precision": n_hits / k,
        "recall": n_hits / len(rel),
        "hit": float(n_hits > 0),
        "ndcg": dcg / idcg,
        "map": ap,
    }


def ranking_metrics(
    recommended: Sequence[Sequence], relevant: Sequence[Iterable], k: int = C.DEFAULT_K, catalog_size: int | None = None
) -> dict[str, float]:
    """Mean metrics@k over customers (parallel lists); ``coverage`` when ``catalog_size`` is given."""
    if len(recommended) != len(relevant):
        raise ValueError(f"{len(recommended)} recommendation lists for {len(relevant)} relevance sets")
    rows = [m for r, rel in zip(recommended, relevant) if (m := user_metrics(r, rel, k)) is not None]
    if not rows:
        raise ValueError("no customer has a relevant item: nothing to evaluate")
    out = {at_k(name, k): float(np.mean([m[name] for m in rows])) for name in rows[0]}
    out["customers"] = float(len(rows))
    if catalog_size:
        shown = set()
        for r in recommended:
            shown.update(list(r)[:k])
        out[at_k("coverage", k)] = len(shown) / catalog_size
    return out
