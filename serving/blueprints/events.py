"""Offer events from marketing tools: sent, viewed, redeemed."""

from __future__ import annotations

from flask.views import MethodView

from serving.schemas import EventsRequest, EventsResponse
from serving.web import Blueprint, require, state

blp = Blueprint("events", __name__, url_prefix="/v1", description="Offer events")


@blp.route("/events")
class EventsView(MethodView):
    @require("events")
    @blp.arguments(EventsRequest())
    @blp.response(201, EventsResponse)
    def post(self, body):
        """Store events, idempotent by event_id (a repeated event is counted as a duplicate).
        Frequency caps and redemption limits see them at once. Send {"events": [...]}."""
        events = body["events"]
        stored = state().events.add(events)
        return {"received": len(events), "stored": stored, "duplicates": len(events) - stored}
