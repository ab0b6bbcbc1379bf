"""The data contract: which tables exist, their columns, kinds and rules.

docs/data.md is the prose version of this module; keep them in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys import constants as C

# Column kinds understood by the coercion step (recsys.data.coerce).
ID = "id"  # integer or string identifier, kept as given
INT = "int"
FLOAT = "float"
TIMESTAMP = "timestamp"  # instant, ISO 8601 in text sources, stored naive UTC
DATE = "date"  # calendar day (time of day dropped)
TEXT = "text"
ID_LIST = "id_list"  # list of ids: native list, JSON array or "a|b|c" text
TEXT_LIST = "text_list"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    required: bool = True
    nullable: bool = False
    unique: bool = False
    allowed: tuple[str, ...] | None = None  # for TEXT and TEXT_LIST values
    min_value: float | None = None
    max_value: float | None = None
    not_future: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    required: bool = False
    key: str | None = None  # unique, non-null identifier column
    extra_columns: bool = True  # columns outside the contract are kept as given
    empty_is_error: bool = True
    description: str = ""

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


TRANSACTIONS = TableSpec(
    C.TRANSACTIONS,
    required=True,
    description="One row per product line of a purchase; negative quantity is a return.",
    columns=(
        ColumnSpec(C.CUSTOMER_ID, ID),
        ColumnSpec(C.PRODUCT_ID, ID),
        ColumnSpec(C.TIMESTAMP, TIMESTAMP, not_future=True),
        ColumnSpec(C.QUANTITY, INT),
        ColumnSpec(C.AMOUNT, FLOAT),
        ColumnSpec(C.BASKET_ID, ID, required=False),
        ColumnSpec(C.STORE_ID, ID, required=False, nullable=True),
        ColumnSpec(C.DISCOUNT, FLOAT, required=False, min_value=0.0),
    ),
)

PRODUCTS = TableSpec(
    C.PRODUCTS,
    key=C.PRODUCT_ID,
    description="Product master data.",
    columns=(
        ColumnSpec(C.PRODUCT_ID, ID, unique=True),
        ColumnSpec(C.CATEGORY, TEXT, required=False, nullable=True),
        ColumnSpec(C.DEPARTMENT, TEXT, required=False, nullable=True),
        ColumnSpec(C.BRAND, TEXT, required=False, nullable=True),
        ColumnSpec(C.NAME, TEXT, required=False, nullable=True),
    ),
)

CUSTOMERS = TableSpec(
    C.CUSTOMERS,
    key=C.CUSTOMER_ID,
    description="Customer master data; any further columns are attributes.",
    columns=(
        ColumnSpec(C.CUSTOMER_ID, ID, unique=True),
        ColumnSpec(C.SIGNUP_DATE, TIMESTAMP, required=False, nullable=True, not_future=True),
    ),
)

OFFERS = TableSpec(
    C.OFFERS,
    key=C.OFFER_ID,
    description="The offer catalog.",
    columns=(
        ColumnSpec(C.OFFER_ID, ID, unique=True),
        ColumnSpec(C.NAME, TEXT),
        ColumnSpec(C.OFFER_TYPE, TEXT, allowed=C.OFFER_TYPES),
        ColumnSpec(C.VALUE, FLOAT, min_value=0.0),
        ColumnSpec(C.PRODUCT_IDS, ID_LIST, required=False, nullable=True),
        ColumnSpec(C.CATEGORY, TEXT, required=False, nullable=True),
        ColumnSpec(C.START_DATE, DATE),
        ColumnSpec(C.END_DATE, DATE),
        ColumnSpec(C.CHANNELS, TEXT_LIST, required=False, nullable=True, allowed=C.CHANNEL_NAMES),
        ColumnSpec(C.SEGMENTS, TEXT_LIST, required=False, nullable=True),
        ColumnSpec(C.MIN_CHURN_RISK, FLOAT, required=False, nullable=True, min_value=0.0, max_value=1.0),
        ColumnSpec(C.MAX_CHURN_RISK, FLOAT, required=False, nullable=True, min_value=0.0, max_value=1.0),
        ColumnSpec(C.COST, FLOAT, required=False, nullable=True, min_value=0.0),
        ColumnSpec(C.MAX_REDEMPTIONS, INT, required=False, nullable=True, min_value=1),
        ColumnSpec(C.CONTROL_SHARE, FLOAT, required=False, nullable=True, min_value=0.0, max_value=1.0),
    ),
)

OFFER_EVENTS = TableSpec(
    C.OFFER_EVENTS,
    empty_is_error=False,
    description="Feedback on offers: sent, viewed, redeemed, and held_out (kept back as control).",
    columns=(
        ColumnSpec(C.CUSTOMER_ID, ID),
        ColumnSpec(C.OFFER_ID, ID),
        ColumnSpec(C.EVENT, TEXT, allowed=C.EVENT_TYPES),
        ColumnSpec(C.TIMESTAMP, TIMESTAMP, not_future=True),
        ColumnSpec(C.EVENT_ID, ID, required=False, unique=True),
        ColumnSpec(C.CAMPAIGN_ID, ID, required=False, nullable=True),
        ColumnSpec(C.PROPENSITY, FLOAT, required=False, nullable=True, min_value=0.0, max_value=1.0),
    ),
)

SPECS: dict[str, TableSpec] = {s.name: s for s in (TRANSACTIONS, PRODUCTS, CUSTOMERS, OFFERS, OFFER_EVENTS)}


@dataclass
class Reference:
    """A column whose values must name rows of another table's key."""

    table: str
    column: str
    target: str
    severity: str  # what an unknown value is: "error" or "warning"
    why: str = field(default="")


# Referential rules and what a broken reference costs (documented in docs/data.md).
REFERENCES = (
    Reference(C.TRANSACTIONS, C.PRODUCT_ID, C.PRODUCTS, "warning", "the product gets no category or department"),
    Reference(C.TRANSACTIONS, C.CUSTOMER_ID, C.CUSTOMERS, "warning", "the customer gets no attributes"),
    Reference(C.OFFERS, C.PRODUCT_IDS, C.PRODUCTS, "warning", "unknown products can only match by future purchases"),
    Reference(C.OFFER_EVENTS, C.OFFER_ID, C.OFFERS, "error", "an event must name an offer of the catalog"),
    Reference(C.OFFER_EVENTS, C.CUSTOMER_ID, C.CUSTOMERS, "warning", "the customer is known only by the event"),
)
