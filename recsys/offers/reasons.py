"""The reason shown beside each ranked offer, in plain words (docs/offers.md)."""

from __future__ import annotations

import numpy as np

REASON_HISTORY = "you often buy these"
REASON_CF = "popular with customers like you"
REASON_RETENTION = "we miss you"
REASON_POPULAR = "popular right now"
REASONS = np.array([REASON_POPULAR, REASON_CF, REASON_HISTORY, REASON_RETENTION], dtype=object)  # by code
# The same reasons for machines: stable names to branch on, whatever the words become.
REASON_CODES = np.array(["popular", "similar_customers", "bought_before", "retention"], dtype=object)
REASON_RETENTION_CODE = 3  # its position in REASONS and REASON_CODES


def reason_codes(feats: dict, at_risk: np.ndarray, retention: np.ndarray) -> np.ndarray:
    """Per (customer, offer): the code of its reason in REASONS."""
    cf = feats["cf_score"]
    # CF speaks for an offer in the top quarter of the customer's own CF scores.
    if cf.size:
        q = int(0.75 * (cf.shape[1] - 1))
        cf_high = cf > np.partition(cf, q, axis=1)[:, q : q + 1]
    else:
        cf_high = np.zeros(cf.shape, bool)
    codes = np.zeros(cf.shape, np.int8)  # codes into REASONS: popular right now
    codes[cf_high & (cf > 0)] = 1
    codes[feats["hist_count"] >= 2] = 2
    codes[at_risk[:, None] & retention[None, :]] = REASON_RETENTION_CODE
    return codes
