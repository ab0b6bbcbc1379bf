"""A customer's profile as of a date: the features, BG/NBD P(alive) and expected purchases, and
the inputs of the behavioural segmentation. Every part of the project builds them here.
"""

from __future__ import annotations

import pandas as pd

from recsys import constants as C
from recsys.customers.bgnbd import BGNBD, rfm_summary
from recsys.customers.features import build_features, department_shares
from recsys.customers.history import PurchaseHistory
from recsys.data.line_file import time_span

# A little L2 on BG/NBD's log-parameters keeps the fit finite on short or sparse histories.
BGNBD_PENALIZER = 0.001


def default_as_of(transactions) -> pd.Timestamp:
    """The day after the last transaction (of a frame or a LineFile): every purchase counts."""
    return time_span(transactions)[1].normalize() + pd.Timedelta(days=1)


def bgnbd_scores(
    transactions: pd.DataFrame, as_of: str | pd.Timestamp, horizon_days: int = C.DEFAULT_HORIZON_DAYS
) -> tuple[pd.DataFrame, BGNBD]:
    """``p_alive`` and ``expected_purchases`` (over ``horizon_days``) per customer, from BG/NBD
    fitted on the purchases before ``as_of``; and the fitted model."""
    summary = rfm_summary(transactions, as_of)
    bg = BGNBD(penalizer=BGNBD_PENALIZER).fit(summary)
    scores = pd.DataFrame(
        {"p_alive": bg.p_alive(summary), "expected_purchases": bg.expected_purchases(summary, horizon_days)}
    )
    return scores, bg


def customer_profile(
    transactions: pd.DataFrame,
    as_of: str | pd.Timestamp,
    *,
    products=None,
    customers=None,
    offer_events=None,
    horizon_days: int = C.DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """Customer features plus BG/NBD P(alive) and expected purchases, all from data before ``as_of``."""
    return customer_profile_and_bgnbd(
        transactions,
        as_of,
        products=products,
        customers=customers,
        offer_events=offer_events,
        horizon_days=horizon_days,
    )[0]


def customer_profile_and_bgnbd(
    transactions: pd.DataFrame,
    as_of: str | pd.Timestamp,
    *,
    products=None,
    customers=None,
    offer_events=None,
    horizon_days: int = C.DEFAULT_HORIZON_DAYS,
) -> tuple[pd.DataFrame, BGNBD]:
    """:func:`customer_profile` and the BG/NBD model behind it. ``transactions`` may be a
    :class:`~recsys.customers.history.PurchaseHistory` (profiles at many dates)."""
    as_of = pd.Timestamp(as_of)
    history = PurchaseHistory.of(transactions, products, customers, offer_events)
    features = build_features(history, as_of)
    scores, bg = bgnbd_scores(history, as_of, horizon_days)
    return features.join(scores.reindex(features.index)), bg


def segmentation_inputs(
    features: pd.DataFrame, transactions: pd.DataFrame, products: pd.DataFrame | None, as_of: str | pd.Timestamp
) -> pd.DataFrame:
    """The features with each customer's spend shares of the top departments beside them (0
    for customers without such spend), when the products name departments."""
    if products is None or C.DEPARTMENT not in products:
        return features
    shares = department_shares(transactions, products, as_of)
    return features.join(shares, how="left").fillna(dict.fromkeys(shares.columns, 0.0))
