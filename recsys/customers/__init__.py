"""Customers: features as of a date, RFM segments and behavioural clusters, the BG/NBD model of
purchasing, retention rates and cohorts, and the profile that combines them."""

from recsys.customers.bgnbd import BGNBD, rfm_summary
from recsys.customers.features import FEATURE_COLUMNS, build_features, department_shares
from recsys.customers.profile import (
    BGNBD_PENALIZER,
    bgnbd_scores,
    customer_profile,
    customer_profile_and_bgnbd,
    default_as_of,
    segmentation_inputs,
)
from recsys.customers.retention import cohort_matrix, period_retention, repeat_purchase_rate, rolling_retention
from recsys.customers.segments import BehaviourSegmenter, rfm_segments, segment_summary

__all__ = [
    "BGNBD",
    "BGNBD_PENALIZER",
    "FEATURE_COLUMNS",
    "BehaviourSegmenter",
    "bgnbd_scores",
    "build_features",
    "cohort_matrix",
    "customer_profile",
    "customer_profile_and_bgnbd",
    "default_as_of",
    "department_shares",
    "period_retention",
    "repeat_purchase_rate",
    "rfm_segments",
    "rfm_summary",
    "rolling_retention",
    "segment_summary",
    "segmentation_inputs",
]
