"""Names shared across the library: tables, columns, enumerations and defaults."""

# Table names of the data contract (docs/data.md).
TRANSACTIONS = "transactions"
PRODUCTS = "products"
CUSTOMERS = "customers"
OFFERS = "offers"
OFFER_EVENTS = "offer_events"
TABLES = (TRANSACTIONS, PRODUCTS, CUSTOMERS, OFFERS, OFFER_EVENTS)
REQUIRED_TABLES = (TRANSACTIONS,)

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
EVENT_TYPES = ("sent", "viewed", "redeemed")

# Defaults.
SEED = 42
DEFAULT_K = 10

# Campaigns of The Complete Journey: development uses 8 and 13; 18 is held back
# for independent evaluation and must never be used for tuning or evaluation.
CJ_DEV_CAMPAIGNS = (8, 13)
CJ_HELD_OUT_CAMPAIGNS = (18,)

# Churn risk bands: low below the first threshold, high from the second (docs/churn.md). With a
# 90-day churn rate near 6% (The Complete Journey), high is about seven times the base rate.
RISK_BANDS = (0.2, 0.4)
