"""Request and response schemas: they validate input and generate the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from recsys import constants as C
from serving.fields import ID_MAX_LENGTH, ID_PATTERN, Id, WholeNumber

CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}\.(0|[1-9][0-9]{0,9})$"  # serving.web.encode_cursor
CURSOR = validate.Regexp(CURSOR_PATTERN, error="not a cursor this service issues (VERSION.OFFSET)")
FILTER = validate.Length(min=1, max=128)


def path_parameter(name: str, description: str) -> dict:
    """An id in the URL path, documented as the service accepts it (serving.fields)."""
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH, "pattern": ID_PATTERN},
    }


CUSTOMER_ID = path_parameter(
    "customer_id", "the customer's id exactly as in the data; any other text is an unknown customer"
)
SEGMENT_NAME = path_parameter("name", "an RFM segment's name (404 if the model has no such segment)")


class ErrorBody(Schema):
    """What went wrong: a stable code and a message that names the parameter or field."""

    code = fields.String(required=True)
    message = fields.String(required=True)


class Error(Schema):
    error = fields.Nested(ErrorBody, required=True)


class OffersQuery(Schema):
    k = WholeNumber(text=True, load_default=C.DEFAULT_K, validate=validate.Range(min=1, max=100))
    channel = fields.String(load_default=None, validate=validate.OneOf(C.CHANNEL_NAMES))
    as_of = fields.Date(load_default=None, metadata={"description": "date offers must be valid on (default: today)"})


class Offer(Schema):
    """A ranked offer. Answers sort by ``tier`` ascending, then ``score`` descending: that is ``rank``."""

    rank = fields.Integer()
    offer_id = Id()
    name = fields.String()
    offer_type = fields.String()
    value = fields.Float()
    category = fields.String(allow_none=True)
    start_date = fields.String()
    end_date = fields.String()
    channels = fields.List(fields.String(), allow_none=True)
    tier = fields.Integer(
        metadata={
            "description": "0: retention offer for a customer at risk; 1: any other offer; "
            "2 and 3: the same, after the others because the diversity caps skipped them"
        }
    )
    score = fields.Float(
        metadata={
            "description": "the ranking key within a tier: expected value; for a customer without "
            "history, the share of customers buying the offer's products times its margin"
        }
    )
    p_redeem = fields.Float()
    expected_value = fields.Float()
    reason = fields.String(metadata={"description": "why this offer, in words for the customer"})
    reason_code = fields.String(
        validate=validate.OneOf(("popular", "similar_customers", "bought_before", "retention")),
        metadata={"description": "the reason as a stable code"},
    )


class CustomerOffers(Schema):
    customer_id = Id()
    cold_start = fields.Boolean()
    model_version = fields.String(allow_none=True)
    offers = fields.List(fields.Nested(Offer))
    notice = fields.String(
        metadata={"description": "present when the answer is degraded, e.g. ranked without the events store"}
    )
    held_out = fields.List(
        Id(),
        metadata={
            "description": "offers this customer would have got and is held back from as their control "
            "group (a held_out event is recorded for each): send them nothing for these"
        },
    )


class BatchRequest(Schema):
    customer_ids = fields.List(Id(), required=True, validate=validate.Length(min=1))
    k = WholeNumber(load_default=C.DEFAULT_K, validate=validate.Range(min=1, max=100))
    channel = fields.String(load_default=None, validate=validate.OneOf(C.CHANNEL_NAMES))
    as_of = fields.Date(load_default=None)


class BatchResponse(Schema):
    model_version = fields.String(allow_none=True)
    results = fields.List(fields.Nested(CustomerOffers))


class ChurnRisk(Schema):
    customer_id = Id()
    churn_probability = fields.Float()
    risk_band = fields.String()
    reasons = fields.List(fields.String())
    segment = fields.String(allow_none=True)
    cluster = fields.Raw(allow_none=True)
    p_alive = fields.Float(allow_none=True)
    expected_purchases = fields.Float(allow_none=True)
    total_spend = fields.Float(allow_none=True)
    model_version = fields.String(allow_none=True)


SORTABLE = ("value", *(c for c in C.AT_RISK_COLUMNS if c != "reasons"))


class AtRiskQuery(Schema):
    """The at-risk list's filters and order: the analyst page's list uses the same ones."""

    min_risk = fields.Float(
        load_default=None,
        validate=validate.Range(min=0, max=1),
        metadata={
            "description": "churn probability from which customers are listed (default: the high band's "
            "start, or 0 when a band is asked for)"
        },
    )
    band = fields.String(load_default=None, validate=validate.OneOf(C.RISK_BAND_NAMES))
    segment = fields.String(
        load_default=None, validate=FILTER, metadata={"description": "RFM segment, case aside (422 if unknown)"}
    )
    cluster = fields.String(
        load_default=None, validate=FILTER, metadata={"description": "behavioural cluster (422 if unknown)"}
    )
    min_value = fields.Float(
        load_default=None, validate=validate.Range(min=0), metadata={"description": "least risk x value ($)"}
    )
    sort = fields.String(load_default="value", validate=validate.OneOf(SORTABLE))
    order = fields.String(load_default="desc", validate=validate.OneOf(("asc", "desc")))
    limit = WholeNumber(text=True, load_default=100, validate=validate.Range(min=1, max=10_000))
    cursor = fields.String(load_default=None, validate=CURSOR, metadata={"pattern": CURSOR_PATTERN})
    format = fields.String(load_default=None, validate=validate.OneOf(("json", "csv")))


class AtRiskPage(Schema):
    customers = fields.List(fields.Nested(ChurnRisk))
    next_cursor = fields.String(allow_none=True)
    total = fields.Integer()


class Segment(Schema):
    name = fields.String()
    customers = fields.Integer()
    mean_churn_probability = fields.Float()
    high_risk_share = fields.Float(metadata={"description": "share of the segment's customers in the high risk band"})
    mean_total_spend = fields.Float()


class Segments(Schema):
    segments = fields.List(fields.Nested(Segment))


class PageQuery(Schema):
    limit = WholeNumber(text=True, load_default=100, validate=validate.Range(min=1, max=10_000))
    cursor = fields.String(load_default=None, validate=CURSOR, metadata={"pattern": CURSOR_PATTERN})


class SegmentCustomers(Schema):
    segment = fields.String()
    customer_ids = fields.List(Id())
    next_cursor = fields.String(allow_none=True)
    total = fields.Integer()


class Event(Schema):
    """One event. Beyond these types, each is checked against the data contract's rules for
    offer_events (recsys data validate): a known offer, a timestamp not in the future."""

    event_id = fields.String(
        required=True, validate=validate.Regexp(r"^[^\x00-\x1f\x7f]{1,128}$", error="must be 1 to 128 characters")
    )
    customer_id = Id(required=True)
    offer_id = Id(required=True)
    event = fields.String(required=True, validate=validate.OneOf(C.EVENT_TYPES))
    propensity = fields.Float(load_default=None, allow_nan=False, validate=validate.Range(min=0, max=1))
    timestamp = fields.String(
        required=True,
        metadata={"format": "date-time", "description": "ISO 8601; UTC unless it carries an offset"},
    )
    campaign_id = Id(load_default=None, allow_none=True)


class EventsRequest(Schema):
    events = fields.List(fields.Nested(Event), required=True, validate=validate.Length(min=1, max=10_000))


class EventsResponse(Schema):
    received = fields.Integer()
    stored = fields.Integer()
    duplicates = fields.Integer()


class ModelInfo(Schema):
    name = fields.String()
    version = fields.String(allow_none=True)
    alias = fields.String(allow_none=True)
    model_uri = fields.String()
    trained_at = fields.String(allow_none=True)
    as_of = fields.String(allow_none=True, metadata={"description": "the date the model was trained as of"})
    horizon_days = fields.Integer(
        allow_none=True, metadata={"description": "churn_probability: no purchase within this many days"}
    )
    data_fingerprint = fields.String(allow_none=True, metadata={"description": "digest of the training data"})
    data_last_date = fields.String(allow_none=True, metadata={"description": "the last transaction's date"})
    age_days = fields.Float(allow_none=True, metadata={"description": "days since the model was trained"})
    quality_gate = fields.String(
        allow_none=True, metadata={"description": "the version's quality gate: passed, failed or forced"}
    )
    source = fields.String(
        metadata={"description": "registry, directory, or local copy (the registry was unreachable at start)"}
    )
    loaded_at = fields.String()
    metrics = fields.Dict(keys=fields.String(), values=fields.Float())
    catalog_offers = fields.Integer()
    customers = fields.Integer()


class LiftQuery(Schema):
    offer_id = fields.String(load_default=None, metadata={"description": "one offer's lift"})
    campaign_id = fields.String(load_default=None, metadata={"description": "one campaign's lift"})


class LiftRow(Schema):
    level = fields.String(metadata={"description": "offer or campaign"})
    group = fields.String(metadata={"description": "the offer id or the campaign id"})
    treated = fields.Integer()
    control = fields.Integer()
    incremental_profit = fields.Float(allow_none=True, metadata={"description": "$ per treated customer"})
    incremental_profit_low = fields.Float(allow_none=True)
    incremental_profit_high = fields.Float(allow_none=True)
    incremental_revenue = fields.Float(allow_none=True)
    incremental_revenue_low = fields.Float(allow_none=True)
    incremental_revenue_high = fields.Float(allow_none=True)
    discount_cost = fields.Float(allow_none=True)
    verdict = fields.String()


class LiftTable(Schema):
    rows = fields.List(
        fields.Nested(LiftRow),
        metadata={
            "description": "also each outcome's means, lift and relative lift with their intervals "
            "(docs/incrementality.md)"
        },
    )
    model_version = fields.String(allow_none=True)
    note = fields.String()
