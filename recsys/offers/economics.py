"""What an offer costs and what a redemption is worth to the business.

The objective of the ranking is the expected value of sending an offer:
P(redeem) x (value to the business - cost). docs/offers.md documents the rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import constants as C

# Cost of an offer when the catalog has no ``cost``: per offer type, as a function of its value
# and the average price of its products.
COST_RULES = {
    "amount_off": lambda value, price: value,
    "percent_off": lambda value, price: value / 100.0 * price,
    "bogo": lambda value, price: price,
    "points_multiplier": lambda value, price: 0.01 * (value - 1.0) * price,
    "free_shipping": lambda value, price: value,
    "free_trial": lambda value, price: value,
    "gift": lambda value, price: value,
}
BASKET_UNITS = 2.0  # value of a redemption to the business: about two units of the offer's products


def average_prices(targets: sp.csr_matrix, prices: np.ndarray) -> np.ndarray:
    """Mean price of each offer's products; the mean price of all products for an offer whose
    products are unknown."""
    n = np.asarray(targets.sum(axis=1)).ravel()
    prices = np.nan_to_num(prices, nan=0.0)
    avg = np.asarray(targets @ prices).ravel() / np.maximum(n, 1)
    return np.where(n > 0, avg, prices[prices > 0].mean() if (prices > 0).any() else 0.0)


def offer_economics(offers: pd.DataFrame, targets: sp.csr_matrix, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value to the business, cost) of each offer: the catalog's ``business_value`` and
    ``cost`` where given, the rules above otherwise."""
    avg_price = average_prices(targets, prices)
    value = offers[C.VALUE].to_numpy(np.float64)
    rule_cost = np.array(
        [COST_RULES.get(t, COST_RULES["gift"])(v, p) for t, v, p in zip(offers[C.OFFER_TYPE], value, avg_price)],
        dtype=np.float64,
    )
    cost = offers[C.COST].to_numpy(np.float64, na_value=np.nan) if C.COST in offers else rule_cost
    cost = np.where(np.isnan(cost), rule_cost, cost)
    business = offers["business_value"].to_numpy(np.float64) if "business_value" in offers else BASKET_UNITS * avg_price
    return business, cost
