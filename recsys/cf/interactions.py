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
    if isinstance(transactions, BasketLines):
        return counts_matrix(transactions.counts(), customers, products)
    with BasketLines.of(transactions) as lines:
        return counts_matrix(lines.counts(), customers, products)


def counts_matrix(pairs: dict[str, np.ndarray], customers: IdMap, products: IdMap) -> sp.csr_matrix:
    """The CSR matrix of :meth:`BasketLines.counts` (pairs outside the maps left out)."""
    rows, cols = customers.positions(pairs["c"]), products.positions(pairs["p"])
    ok = (rows >= 0) & (cols >= 0)
    m = sp.coo_matrix((pairs["baskets"][ok], (rows[ok], cols[ok])), shape=(len(customers), len(products)))
    out = m.tocsr()
    out.sort_indices()
    return out
