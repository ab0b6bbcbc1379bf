"""Customer x product interaction matrices and the id maps that index them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import constants as C


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


def purchase_counts(transactions: pd.DataFrame, customers: IdMap, products: IdMap) -> sp.csr_matrix:
    """How many baskets of each customer hold each product (float32 CSR, customers x products).

    Rows whose customer or product is not in the maps are skipped; returns are not counted.
    """
    basket = C.BASKET_ID if C.BASKET_ID in transactions else C.TIMESTAMP
    rows = customers.positions(transactions[C.CUSTOMER_ID]).astype(np.int64)
    cols = products.positions(transactions[C.PRODUCT_ID]).astype(np.int64)
    ok = (rows >= 0) & (cols >= 0)
    if C.QUANTITY in transactions:
        ok &= transactions[C.QUANTITY].to_numpy() > 0
    # One count per (customer, product, basket): the pairs as one integer beside the basket,
    # deduplicated by sorting (no copy of the table, no hash table of its rows).
    pair = rows[ok] * len(products) + cols[ok]
    del rows, cols
    basket_codes = pd.factorize(transactions[basket].to_numpy()[ok])[0]
    order = np.lexsort((basket_codes, pair))
    pair, basket_codes = pair[order], basket_codes[order]
    first = np.ones(len(pair), dtype=bool)
    first[1:] = (pair[1:] != pair[:-1]) | (basket_codes[1:] != basket_codes[:-1])
    pair = pair[first]
    m = sp.coo_matrix(
        (np.ones(len(pair), dtype=np.float32), (pair // len(products), pair % len(products))),
        shape=(len(customers), len(products)),
    )
    return m.tocsr()
