"""Ranked offers for one customer or a batch (email platforms)."""

from __future__ import annotations

import datetime
import functools
import json

import pandas as pd
from flask import Response

from serving.answers import answers
from serving.schemas import CUSTOMER_ID, BatchRequest, BatchResponse, CustomerOffers, OffersQuery
from serving.web import ApiError, Blueprint, path_id, require, state

blp = Blueprint("offers", __name__, url_prefix="/v1", description="Ranked offers per customer")


def _day(value: datetime.date | None) -> pd.Timestamp:
    """The day offers must be valid on: the one asked for, or today (local time)."""
    return _midnight(value if value is not None else datetime.date.today())


@functools.lru_cache(maxsize=64)
def _midnight(day: datetime.date) -> pd.Timestamp:
    # a handful of days are asked for, thousands of times each: each Timestamp is built once
    return pd.Timestamp(day)


def offer_answers(customer_ids: list, k: int, channel: str | None, as_of) -> list[bytes]:
    """The JSON answer of each customer, in order (serving.answers)."""
    st = state()
    loaded = st.model.current
    ids = [loaded.parse_customer_id(c) for c in customer_ids]
    try:
        rows = st.events.rows_by_customer(ids, id_type=int if loaded.id_is_int else str)
        st.events_health.succeeded()
    except Exception as exc:  # answer without the latest events, and say so (serving.dependencies)
        st.events_health.failed(exc)
        rows = None
    day = _day(as_of)
    found, cached = answers(loaded, rows or {}, ids, k, channel, day, st.settings.control, st.held_out)
    notices = [] if rows is not None else [NO_EVENTS]
    empty = loaded.no_offer_notice(day)
    if empty:
        notices.append(empty)
    if notices:
        tail = (',"notice":' + json.dumps(" ".join(notices)) + "}").encode()
        found = [f[:-1] + tail for f in found]
    if cached:
        st.metrics.answers_cached.inc(cached)
    if cached < len(ids):
        st.metrics.answers_ranked.inc(len(ids) - cached)
    return found


NO_EVENTS = (
    "the events store is unreachable: offers are ranked without recorded events, so frequency caps and "
    "redemption limits may not apply."
)


def _json(body: bytes) -> Response:
    return Response(body, mimetype="application/json")


# Function views: the hottest endpoints skip building a view object per request.
@blp.route("/customers/<customer_id>/offers", methods=["GET"], parameters=[CUSTOMER_ID])
@require("read")
@blp.arguments(OffersQuery(), location="query")
@blp.response(200, CustomerOffers)
def customer_offers(query, customer_id):
    """Ranked offers for one customer; unknown customers get cold-start offers (cold_start: true)."""
    return _json(offer_answers([path_id(customer_id)], query["k"], query["channel"], query["as_of"])[0])


@blp.route("/offers/batch", methods=["POST"])
@require("read")
@blp.arguments(BatchRequest())
@blp.response(200, BatchResponse)
def batch_offers(body):
    """Offers for up to RECSYS_MAX_BATCH customers at once."""
    ids = body["customer_ids"]
    limit = state().settings.max_batch
    if len(ids) > limit:
        raise ApiError(400, "bad_parameter", f"customer_ids: {len(ids)} ids, at most {limit} per request")
    version = state().model.current.version
    results = offer_answers(ids, body["k"], body["channel"], body["as_of"])
    head = b'{"model_version":' + json.dumps(version).encode() + b',"results":['
    return _json(head + b",".join(results) + b"]}")
