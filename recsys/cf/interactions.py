"""Customer x product interaction matrices and the id maps that index them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.lines import BasketLines


@dataclass(frozen=True)
class IdMap:
    """Positions of ids in a matrix axis; ``ids[i]`` is the id at row/column ``i``."""

    ids: pd.Index

    @classmethod
    def of(cls, values) -> IdMap:
        return cls(pd.Index(pd.unique(pd.Series(values)).tolist()).sort_values())

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, values) -> np.ndarray:
        """Position of each value, -1 where unknown."""
        if len(values) <= 4:  # a request's few ids: dictionary lookups beat building an index
            return np.array([self._single(v) for v in values], dtype=np.intp)
        return self.ids.get_indexer(pd.Index(values))

    def _single(self, value) -> int:
        try:
            i = self.ids.get_loc(value)
        except (KeyError, TypeError):
            return -1
        return i if isinstance(i, (int, np.integer)) else -1

    def position(self, value) -> int | None:
        i = self._single(value)
        return None if i < 0 else int(i)


def purchase_counts(transactions: pd.DataFrame | BasketLines, customers: IdMap, products: IdMap) -> sp.csr_matrix:
    """How many baskets of each customer hold each product (float32 CSR, customers x products).

    Rows whose customer or product is not in the maps are skipped; returns are not counted. The
    count is over basket lines (recsys.data.lines), the reduction the offer snapshots sum too;
    ``transactions`` may be those lines already.
    """
    if not isinstance(transactions, BasketLines):
        with BasketLines.of(transactions) as lines:
            return purchase_counts(lines, customers, products)
    pairs = transactions.counts(rows=customers.ids, columns=products.ids)
    (counts,) = positioned_matrices(pairs, (len(customers), len(products)), ["baskets"])
    return counts


def positioned_matrices(pairs: dict[str, np.ndarray], shape: tuple[int, int], values: list[str]) -> list[sp.csr_matrix]:
    """Float32 CSR matrices of positioned pairs (:meth:`BasketLines.positioned`: ``c`` and
    ``p`` positions sorted by (c, p), each pair once), one per column named in ``values``; they
    share one sparsity pattern. The entries are in CSR order already: nothing is sorted or copied
    but the row pointers."""
    rows = np.asarray(pairs["c"], np.intp)
    indptr = np.zeros(shape[0] + 1, np.int64 if len(rows) >= 2**31 else np.int32)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    indices = np.asarray(pairs["p"], indptr.dtype)
    out = []
    for name in values:
        m = sp.csr_matrix((np.asarray(pairs[name], np.float32), indices, indptr), shape=shape)
        m.has_sorted_indices = True  # sorted by construction: nothing may sort the shared arrays
        out.append(m)
    return out
