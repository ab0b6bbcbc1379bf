"""Churn risk per customer: probability, band and reasons, and the customer table the bundle keeps."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from recsys import constants as C
from recsys.churn.model import ChurnModel
from recsys.churn.reasons import reasons, risk_band

logger = logging.getLogger(__name__)


def score_customers(
    model: ChurnModel, features: pd.DataFrame, bands: Mapping[str, float] = C.RISK_BANDS
) -> pd.DataFrame:
    """Probability, band and reasons for every customer of ``features`` (indexed by customer_id)."""
    p = model.predict_risk(features)
    return pd.DataFrame(
        {
            "churn_probability": p,
            "risk_band": risk_band(p, bands),
            "reasons": reasons(features),
            "p_alive": features.get("p_alive"),
        }
    )


def customer_table(
    churn: pd.DataFrame, features: pd.DataFrame, segments: pd.Series, clusters: pd.Series
) -> pd.DataFrame:
    """What the model keeps of every customer (``constants.CUSTOMER_COLUMNS``): the churn
    scores of :func:`score_customers`, the RFM segment, the behavioural cluster, BG/NBD's
    P(alive) and expected purchases, and the total spend."""
    return pd.DataFrame(
        {
            "churn_probability": churn["churn_probability"],
            "risk_band": churn["risk_band"],
            "reasons": churn["reasons"],
            "segment": segments.reindex(features.index),
            "cluster": clusters.reindex(features.index),
            "p_alive": features["p_alive"],
            "expected_purchases": features["expected_purchases"],
            "total_spend": features["monetary_total"],
        }
    )[list(C.CUSTOMER_COLUMNS)]
