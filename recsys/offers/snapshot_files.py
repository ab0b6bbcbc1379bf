"""A :class:`~recsys.offers.snapshot.Snapshot` on disk, without pickle: its sparse matrices as
arrays in a compressed ``.npz``, its ids and tables in Parquet, its date in JSON.

The matrices ``counts``, ``spend`` and ``decayed`` are built from the same (customer, product)
pairs, so they share one sparsity pattern: it is stored once. Basket counts (``counts`` and
``recent``) are whole numbers, stored as ``uint16`` when they fit (they come back as the
``float32`` the features compute with). Per stored pair that is 4 bytes of column index and 12 of
values before compression, instead of four float32 CSR matrices of 8 bytes each in a pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import constants as C
from recsys.cf import IdMap
from recsys.cf.base import ModelFileError
from recsys.offers.snapshot import Snapshot

FORMAT = 1
_VECTORS = ("category_of", "customer_baskets", "customer_redemptions", "product_popularity", "customer_lines")


def _whole(values: np.ndarray) -> np.ndarray:
    """Whole-number values as uint16 when they fit (exactly), else float32 unchanged."""
    if values.size == 0 or (values.min() >= 0 and values.max() <= np.iinfo(np.uint16).max):
        small = values.astype(np.uint16)
        if np.array_equal(small, values):
            return small
    return values.astype(np.float32)


def _pattern(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of a CSR matrix in the narrowest index type scipy keeps as it is."""
    dtype = np.int32 if m.nnz < np.iinfo(np.int32).max and max(m.shape) < np.iinfo(np.int32).max else np.int64
    return m.indptr.astype(dtype), m.indices.astype(dtype)


def save_snapshot(snap: Snapshot, path: str | Path) -> Path:
    """Write ``snap`` under ``path`` (a directory, created)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    base = snap.counts.tocsr()
    base.sort_indices()
    arrays["indptr"], arrays["indices"] = _pattern(base)
    arrays["counts"] = _whole(base.data)
    for name in ("spend", "decayed"):
        m = getattr(snap, name).tocsr()
        m.sort_indices()
        if np.array_equal(m.indptr, base.indptr) and np.array_equal(m.indices, base.indices):
            arrays[name] = m.data.astype(np.float32)
        else:  # another pattern (not produced by snapshot(), kept exact anyway)
            arrays[f"{name}_indptr"], arrays[f"{name}_indices"] = _pattern(m)
            arrays[name] = m.data.astype(np.float32)
    recent = snap.recent.tocsr()
    recent.sort_indices()
    arrays["recent_indptr"], arrays["recent_indices"] = _pattern(recent)
    arrays["recent"] = _whole(recent.data)
    for name in _VECTORS:
        arrays[name] = np.asarray(getattr(snap, name))
    np.savez_compressed(path / "snapshot.npz", **arrays)
    pd.DataFrame({C.CUSTOMER_ID: snap.customer_map.ids}).to_parquet(path / "customers.parquet", index=False)
    pd.DataFrame({C.PRODUCT_ID: snap.product_map.ids}).to_parquet(path / "products.parquet", index=False)
    pd.DataFrame({C.CATEGORY: pd.Series(snap.categories, dtype="string")}).to_parquet(
        path / "categories.parquet", index=False
    )
    snap.offer_history.rename_axis(C.OFFER_ID).reset_index().to_parquet(path / "offer_history.parquet", index=False)
    meta = {"format": FORMAT, "as_of": snap.as_of.isoformat(), "shape": list(snap.counts.shape)}
    (path / "snapshot.json").write_text(json.dumps(meta))
    return path


def load_snapshot(path: str | Path) -> Snapshot:
    path = Path(path)
    needed = ["snapshot.json", "snapshot.npz", "customers.parquet", "products.parquet", "offer_history.parquet"]
    missing = [n for n in needed if not (path / n).exists()]
    if missing:
        raise ModelFileError(f"{path}: not a saved snapshot (missing {', '.join(missing)})")
    meta = json.loads((path / "snapshot.json").read_text())
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: snapshot format {meta.get('format')} is not {FORMAT}")
    shape = tuple(meta["shape"])
    with np.load(path / "snapshot.npz", allow_pickle=False) as z:
        a = {name: z[name] for name in z.files}

    def matrix(name: str, indptr: str = "indptr", indices: str = "indices") -> sp.csr_matrix:
        if f"{name}_indptr" in a:
            indptr, indices = f"{name}_indptr", f"{name}_indices"
        return sp.csr_matrix((a[name].astype(np.float32), a[indices], a[indptr]), shape=shape)

    history = pd.read_parquet(path / "offer_history.parquet").set_index(C.OFFER_ID)
    categories = (
        pd.read_parquet(path / "categories.parquet")[C.CATEGORY] if (path / "categories.parquet").exists() else []
    )
    return Snapshot(
        pd.Timestamp(meta["as_of"]),
        IdMap(pd.Index(pd.read_parquet(path / "customers.parquet")[C.CUSTOMER_ID])),
        IdMap(pd.Index(pd.read_parquet(path / "products.parquet")[C.PRODUCT_ID])),
        matrix("counts"),
        matrix("spend"),
        matrix("decayed"),
        matrix("recent", "recent_indptr", "recent_indices"),
        a["category_of"],
        pd.Index(list(categories)),
        a["customer_baskets"],
        a["customer_redemptions"],
        a["product_popularity"],
        history,
        a["customer_lines"],
    )
