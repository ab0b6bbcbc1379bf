"""Offer events from marketing tools: sent, viewed, redeemed."""

from __future__ import annotations

import pandas as pd
from flask.views import MethodView

from recsys import constants as C
from recsys.data.event_store import EventConflict, EventStoreBusy, EventStoreUnavailable
from recsys.data.validate import validate_events
from serving.schemas import EventsRequest, EventsResponse
from serving.web import ApiError, Blueprint, require, state

blp = Blueprint("events", __name__, url_prefix="/v1", description="Offer events")

SHOWN = 10  # problems named in one answer


def contract_problems(events: list[dict], catalog: pd.DataFrame) -> list[str]:
    """Each event checked by the data contract's rules for offer_events (the ones `recsys data
    validate` applies, so what is stored now validates at the next training): "events[i].field:
    problem"."""
    frame = pd.DataFrame(events)
    frame[C.OFFER_ID] = frame[C.OFFER_ID].astype(str)  # ids compare in their canonical text
    offers = catalog[[C.OFFER_ID, C.NAME, C.OFFER_TYPE, C.VALUE, C.START_DATE, C.END_DATE]].assign(
        **{C.OFFER_ID: catalog[C.OFFER_ID].astype(str)}
    )
    out = []
    for issue in validate_events(frame.drop(columns=[c for c in frame if frame[c].isna().all()]), offers):
        what = issue.problem
        if issue.column is None:
            out.append(f"events: {what}")
        for row in issue.rows:
            out.append(f"events[{row}].{issue.column}: {what}")
    return out


@blp.route("/events")
class EventsView(MethodView):
    @require("events")
    @blp.arguments(EventsRequest())
    @blp.response(201, EventsResponse)
    @blp.alt_response(409, schema="Error", description="an event_id is stored already with another payload")
    @blp.alt_response(503, schema="Error", description="the events store is busy or unreachable; retry")
    def post(self, body):
        """Store events, idempotent by event_id: the same event sent again is counted as a
        duplicate; an event_id sent with another payload is refused (409) and nothing is stored.
        Every event is checked against the data contract (a known offer, no future timestamp):
        a 400 names each event's index and field. Frequency caps and redemption limits see them
        at once. Send {"events": [...]}."""
        events = body["events"]
        first: dict = {}
        clashing = [e["event_id"] for e in events if first.setdefault(e["event_id"], e) != e]
        if clashing:
            raise ApiError(409, "event_conflict", f"{EventConflict(clashing, 'sent twice with different payloads')}")
        unique = list(first.values())  # the same event twice in one request is one event
        problems = contract_problems(unique, state().model.current.catalog)
        if problems:
            more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
            raise ApiError(400, "invalid_events", "; ".join(problems[:SHOWN]) + more + "; nothing was stored")
        try:
            stored = state().events.add(events)
        except EventConflict as exc:
            raise ApiError(409, "event_conflict", f"{exc}; nothing was stored") from None
        except (EventStoreBusy, EventStoreUnavailable) as exc:
            raise ApiError(503, "events_unavailable", f"{exc}; nothing was stored, send again", retry_after=1) from None
        return {"received": len(events), "stored": stored, "duplicates": len(events) - stored}
