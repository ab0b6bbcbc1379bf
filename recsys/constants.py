"""Names and values shared across the project, defined once: tables, columns, enumerations,
defaults, the registered model's name and aliases, risk bands, metric names and the column
lists of every answer and export."""

# Table names of the data contract (docs/data.md).
TRANSACTIONS = "transactions"
PRODUCTS = "products"
CUSTOMERS = "customers"
OFFERS = "offers"
OFFER_EVENTS = "offer_events"
TABLES = (TRANSACTIONS, PRODUCTS, CUSTOMERS, OFFERS, OFFER_EVENTS)

# Column names.
CUSTOMER_ID = "customer_id"
PRODUCT_ID = "product_id"
OFFER_ID = "offer_id"
EVENT_ID = "event_id"
TIMESTAMP = "timestamp"
QUANTITY = "quantity"
AMOUNT = "amount"
BASKET_ID = "basket_id"
STORE_ID = "store_id"
DISCOUNT = "discount"
CATEGORY = "category"
DEPARTMENT = "department"
BRAND = "brand"
NAME = "name"
SIGNUP_DATE = "signup_date"
OFFER_TYPE = "offer_type"
VALUE = "value"
PRODUCT_IDS = "product_ids"
START_DATE = "start_date"
END_DATE = "end_date"
CHANNELS = "channels"
SEGMENTS = "segments"
MIN_CHURN_RISK = "min_churn_risk"
MAX_CHURN_RISK = "max_churn_risk"
COST = "cost"
MAX_REDEMPTIONS = "max_redemptions_per_customer"
EVENT = "event"
CAMPAIGN_ID = "campaign_id"
PROPENSITY = "propensity"  # probability with which the event's arm (sent or held out) was chosen
CONTROL_SHARE = "control_share"  # share of an offer's customers held back as its control group

# Enumerations.
OFFER_TYPES = (
    "percent_off",
    "amount_off",
    "bogo",
    "points_multiplier",
    "free_shipping",
    "free_trial",
    "gift",
)
CHANNEL_NAMES = ("email", "app", "web", "sms")
EVENT_TYPES = ("sent", "viewed", "redeemed", "held_out")
SENT, VIEWED, REDEEMED, HELD_OUT = EVENT_TYPES  # held_out: the customer was kept back as control

# Defaults.
SEED = 42
DEFAULT_K = 10
DEFAULT_HORIZON_DAYS = 90  # churn: no purchase in this many days after a snapshot
# Past sent offers the redemption model learns from, every redemption kept: beyond it the others
# are sampled and weighted (recsys.offers.redemption). 2 million rows of 13 features are about
# 0.2 GiB in the fit's float64, and estimate 13 coefficients far more precisely than the
# campaigns' own noise.
MAX_REDEMPTION_EXAMPLES = 2_000_000


def at_k(metric: str, k: int = DEFAULT_K) -> str:
    """The name of a top-k metric: ``at_k("recall")`` is ``recall_at_10``."""
    return f"{metric}_at_{k}"


# The registered model and its aliases (MLflow model registry).
MODEL_NAME = "loyalty-offers"
CANDIDATE = "candidate"
CHAMPION = "champion"
CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION}"
DEFAULT_EVENTS_URL = "sqlite:///events.db"  # RECSYS_EVENTS_URL unset: the events store in the working directory
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLFLOW_TRACKING_URI unset: a file in the working directory
# The metrics the quality gate judges, as the training pipeline logs them (training.gate), and
# the baselines each must beat; the bundle keeps them all, beside the other baselines evaluated.
GATE_BASELINES = {
    "churn_model_roc_auc": ("churn_recency_rule_roc_auc", "churn_bgnbd_roc_auc", "churn_logistic_roc_auc"),
    "churn_model_average_precision": ("churn_bgnbd_average_precision", "churn_logistic_average_precision"),
    f"offers_engine_{at_k('recall')}": (
        f"offers_popularity_{at_k('recall')}",
        f"offers_random_{at_k('recall')}",
        f"offers_personal_history_{at_k('recall')}",
    ),
    f"cf_als_all_{at_k('ndcg')}": (f"cf_popularity_all_{at_k('ndcg')}",),
}
GATE_METRICS = tuple(GATE_BASELINES)
OTHER_BASELINES = {  # evaluated too, not gated on
    "churn_model_average_precision": ("churn_recency_rule_average_precision",),
    f"offers_engine_{at_k('recall')}": (f"offers_als_{at_k('recall')}",),
    f"cf_als_all_{at_k('ndcg')}": (f"cf_repeat_purchase_all_{at_k('ndcg')}",),
}
# Baselines that are models the product could ship instead (a logistic regression, each
# customer's own purchase history): the candidate must not fall below them by more than the
# gate's tolerance. The other baselines are naive and must be beaten outright.
GATE_PEER_BASELINES = (
    "churn_logistic_roc_auc",
    "churn_logistic_average_precision",
    f"offers_personal_history_{at_k('recall')}",
)
# How far a peer baseline may lead: less than the evaluation's noise (the churn model's average
# precision has a 95% interval about 0.15 wide on The Complete Journey), more than a model that
# loses to its customers' own history (0.026 recall behind it on an 8-month history) needs.
GATE_BASELINE_TOLERANCE = 0.02
# Settings a candidate must share with the champion to be compared with it: another horizon
# changes what churn_probability means (a new model line), another hold-out another evaluation.
GATE_LIKE_WITH_LIKE = ("horizon_days", "held_out_campaigns")

# Campaigns of The Complete Journey: development uses 8 and 13; 18 is held back
# for independent evaluation and must never be used for tuning or evaluation.
CJ_DEV_CAMPAIGNS = (8, 13)
CJ_HELD_OUT_CAMPAIGNS = (18,)

# Churn risk bands, each with the churn probability from which it starts (docs/churn.md). With a
# 90-day churn rate near 6% (The Complete Journey), high is about seven times the base rate.
RISK_BANDS = {"low": 0.0, "medium": 0.2, "high": 0.4}
RISK_BAND_NAMES = tuple(RISK_BANDS)
HIGH_RISK = RISK_BANDS["high"]  # at-risk lists start here; retention offers come first from here

# Columns of the answers and exports (docs/api.md). A ranked offer: the ranking sorts by
# ``tier`` ascending, then ``score`` descending (docs/offers.md, "Order").
RANKED_OFFER_COLUMNS = (
    CUSTOMER_ID,
    "rank",
    OFFER_ID,
    "tier",
    "score",
    "p_redeem",
    "expected_value",
    "reason",
    "reason_code",
    "cold_start",
)
# What the model knows of each customer, in the bundle, the churn-risk answers and the at-risk lists.
CUSTOMER_COLUMNS = (
    "churn_probability",
    "risk_band",
    "reasons",
    "segment",
    "cluster",
    "p_alive",
    "expected_purchases",
    "total_spend",
)
AT_RISK_COLUMNS = (CUSTOMER_ID, *CUSTOMER_COLUMNS)
