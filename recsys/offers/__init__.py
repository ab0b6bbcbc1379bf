"""Offers: affinity features of (customer, offer) pairs, P(redeem), eligibility, economics,
diversity and reasons, the ranking engine that combines them, and its evaluation on real
campaigns. docs/offers.md documents every rule."""

from recsys.errors import InvalidRequestError
from recsys.offers.campaigns import (
    CampaignResult,
    HeldOutCampaignError,
    campaign_frame,
    evaluate_campaign,
    evaluation_campaigns,
    held_out_for,
    hold_out_events,
)
from recsys.offers.catalog import Catalog, no_valid_offer, prepare_catalog
from recsys.offers.eligibility import EligibilityRules, EventArrays
from recsys.offers.examples import past_campaigns, redemption_examples
from recsys.offers.features import OFFER_FEATURES, affinity_features, feature_matrix
from recsys.offers.prepared import PreparedOffers
from recsys.offers.ranker import RANKING_COLUMNS, OfferRanker
from recsys.offers.reasons import REASON_CF, REASON_HISTORY, REASON_POPULAR, REASON_RETENTION
from recsys.offers.redemption import MIN_POSITIVES, RedemptionModel, heuristic_p_redeem
from recsys.offers.snapshot import Snapshot, basket_lines, snapshot

__all__ = [
    "MIN_POSITIVES",
    "OFFER_FEATURES",
    "RANKING_COLUMNS",
    "REASON_CF",
    "REASON_HISTORY",
    "REASON_POPULAR",
    "REASON_RETENTION",
    "CampaignResult",
    "Catalog",
    "EligibilityRules",
    "EventArrays",
    "HeldOutCampaignError",
    "InvalidRequestError",
    "OfferRanker",
    "PreparedOffers",
    "RedemptionModel",
    "Snapshot",
    "affinity_features",
    "basket_lines",
    "campaign_frame",
    "evaluate_campaign",
    "evaluation_campaigns",
    "feature_matrix",
    "held_out_for",
    "heuristic_p_redeem",
    "hold_out_events",
    "no_valid_offer",
    "past_campaigns",
    "prepare_catalog",
    "redemption_examples",
    "snapshot",
]
