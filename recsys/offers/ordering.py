"""The order of each customer's offers: tier, then score; the diversity caps; and the offers a
customer is held back from as control (recsys.incrementality.ControlGroups)."""

from __future__ import annotations

import numpy as np

from recsys import constants as C
from recsys.offers.diversity import diverse_top
from recsys.offers.prepared import PreparedOffers
from recsys.offers.reasons import REASON_CODES, REASON_RETENTION_CODE, REASONS

# The tiers of the order (docs/offers.md, "Order"): a lower tier always ranks first.
TIER_RETENTION = 0  # a retention offer for a customer at risk
TIER_STANDARD = 1  # any other eligible offer
TIER_FILL = 2  # added to an offer's tier when the diversity caps skipped it and it fills the top k


def order_offers(key: np.ndarray, tier: np.ndarray, two_tiers: bool = True) -> tuple[np.ndarray, list[int]]:
    """Per customer, the offers with a finite key by ``tier`` ascending, then ``key``
    descending (ties: catalog order); and how many each customer has. ``two_tiers`` False says
    that every offer is of one tier, so the order by key is the order."""
    finite = np.isfinite(key)
    order = np.argsort(np.where(finite, -key, np.inf), axis=1, kind="stable")
    if two_tiers:
        tiers = np.where(
            np.take_along_axis(finite, order, axis=1), np.take_along_axis(tier, order, axis=1), np.iinfo(np.int64).max
        )
        order = np.take_along_axis(order, np.argsort(tiers, axis=1, kind="stable"), axis=1)
    return order, finite.sum(axis=1).tolist()


def top_k_per_customer(
    ids: np.ndarray,
    orders: list[list[int]],
    prepared: PreparedOffers,
    k: int,
    caps: tuple[int, int],
    control=None,
) -> tuple[list, list, list, list, tuple[list, list, list]]:
    """Each customer's top k of its ``orders`` (eligible offer positions, best first) under the
    diversity ``caps`` (per department, per type), less what ``control`` holds back: row, rank,
    offer position and fill flag of every ranked offer, and (row, offer position, propensity) of
    every offer held back."""
    cust, rank, pos, fill, held = [], [], [], [], ([], [], [])
    for i, top in enumerate(orders):
        if control is not None and control.active:
            chosen, filled, kept = controlled_top(ids[i], top, prepared, k, caps, control)
            held[0].extend([i] * len(kept))
            held[1].extend(kept)
            held[2].extend(control.control_probability(prepared.control_share_list[j]) for j in kept)
        else:
            chosen, filled = diverse_top(top, prepared, k, *caps)
        cust += [i] * (len(chosen) + len(filled))
        rank += range(1, len(chosen) + len(filled) + 1)
        pos += chosen + filled
        fill += [False] * len(chosen) + [True] * len(filled)
    return cust, rank, pos, fill, held


def controlled_top(
    customer_id, order: list[int], prepared: PreparedOffers, k: int, caps: tuple[int, int], control
) -> tuple[list[int], list[int], list[int]]:
    """The diverse top k with the offers the customer is held back from taken out: (chosen,
    fill, held back). With backfill the next eligible offers take their places (and are drawn
    in turn); a customer of the global control group is held back from the whole top k."""
    chosen, filled = diverse_top(order, prepared, k, *caps)
    if control.in_global_control(customer_id):
        return [], [], chosen + filled
    held: list[int] = []
    checked: set[int] = set()
    offer_ids, shares = prepared.offer_id_list, prepared.control_share_list
    while True:
        new = [j for j in chosen + filled if j not in checked]
        checked.update(new)
        out = [j for j in new if control.held_out(customer_id, offer_ids[j], shares[j])]
        if not out:
            return chosen, filled, held
        held += out
        if not control.backfill:
            gone = set(held)
            return [j for j in chosen if j not in gone], [j for j in filled if j not in gone], held
        gone = set(out)
        order = [j for j in order if j not in gone]
        chosen, filled = diverse_top(order, prepared, k, *caps)


def held_columns(
    customers, positions: list[int], propensity: list[float], prepared: PreparedOffers
) -> dict[str, np.ndarray]:
    return {
        C.CUSTOMER_ID: np.asarray(customers, dtype=object),
        C.OFFER_ID: prepared.offer_ids[np.asarray(positions, dtype=np.int64)],
        C.PROPENSITY: np.asarray(propensity, dtype=np.float64),
    }


def objective(p, margin, popularity, cold) -> tuple[np.ndarray, np.ndarray]:
    """The score an order sorts by, and the expected value P(redeem) x margin (broadcast
    alike): the expected value; for customers without history (``cold``), how many customers
    buy the offer's products, times the margin."""
    ev = p * margin
    return np.where(cold, popularity * np.maximum(margin, 1e-6), ev), ev


def choose(
    ids: np.ndarray,
    orders: list[list[int]],
    scored: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    prepared: PreparedOffers,
    k: int,
    caps: tuple[int, int],
    control=None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ranking of customers ``ids`` (RANKING_COLUMNS as column arrays) and the offers held
    back, from each customer's ``orders`` and ``scored``: P(redeem) and reason codes
    (customers x offers), the cold-start flag and the at-risk flag per customer. The score,
    expected value, tier and reason of an offer are computed for the offers chosen only."""
    p, reasons, cold, at_risk = scored
    cust, rank, pos, fill, held = top_k_per_customer(ids, orders, prepared, k, caps, control)
    cust, pos = np.asarray(cust, dtype=np.int64), np.asarray(pos, dtype=np.int64)
    margin = prepared.value_to_business[pos] - prepared.cost[pos]
    chosen_p = p[cust, pos]
    score, ev = objective(chosen_p, margin, prepared.catalog.product_popularity[pos], cold[cust])
    leads = at_risk[cust] & prepared.retention[pos]
    code = np.where(leads, REASON_RETENTION_CODE, reasons[cust, pos])
    ranked = {
        C.CUSTOMER_ID: ids[cust],
        "rank": np.asarray(rank, dtype=np.int64),
        C.OFFER_ID: prepared.offer_ids[pos],
        "tier": np.where(leads, TIER_RETENTION, TIER_STANDARD) + TIER_FILL * np.asarray(fill, dtype=np.int64),
        "score": score,
        "p_redeem": chosen_p,
        "expected_value": ev,
        "reason": REASONS[code],
        "reason_code": REASON_CODES[code],
        "cold_start": cold[cust],
    }
    return ranked, held_columns(ids[np.asarray(held[0], dtype=np.int64)], held[1], held[2], prepared)
