"""Ranked offers for one customer or a batch (email platforms)."""

from __future__ import annotations

import pandas as pd
from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from recsys import constants as C
from serving.model import jsonable
from serving.schemas import BatchRequest, BatchResponse, CustomerOffers, OffersQuery
from serving.web import ApiError, require, state

blp = Blueprint("offers", __name__, url_prefix="/v1", description="Ranked offers per customer")


def _as_of(value):
    return pd.Timestamp(value) if value is not None else pd.Timestamp.now().normalize()


def rank_customers(customer_ids: list, k: int, channel: str | None, as_of) -> list[dict]:
    st = state()
    loaded = st.model.current
    day = _as_of(as_of)
    ids = [loaded.parse_customer_id(c) for c in customer_ids]
    events = st.events.for_customers(ids, id_type=int if loaded.id_is_int else str)
    a = loaded.bundle.ranker._rank_arrays(ids, loaded.prepared_on(day), k=k, channel=channel, as_of=day,
                                          events=events)
    known = loaded.bundle.ranker.snapshot_.customer_map
    out = {c: {"customer_id": jsonable(c), "cold_start": known.position(c) is None,
               "model_version": loaded.version, "offers": []} for c in ids}
    records = loaded.offer_records
    for cid, rank, oid, score, p, ev, reason in zip(a[C.CUSTOMER_ID].tolist(), a["rank"].tolist(),
                                                    a[C.OFFER_ID].tolist(), a["score"].tolist(),
                                                    a["p_redeem"].tolist(), a["expected_value"].tolist(),
                                                    a["reason"].tolist()):
        out[cid]["offers"].append({"rank": rank, "offer_id": oid, **records[oid], "score": score, "p_redeem": p,
                                   "expected_value": ev, "reason": reason})
    return [out[c] for c in ids]


@blp.route("/customers/<customer_id>/offers")
class CustomerOffersView(MethodView):
    @require("read")
    @blp.arguments(OffersQuery, location="query")
    @blp.response(200, CustomerOffers)
    def get(self, query, customer_id):
        """Ranked offers for one customer; unknown customers get cold-start offers (cold_start: true)."""
        return jsonify(rank_customers([customer_id], query["k"], query["channel"], query["as_of"])[0])


@blp.route("/offers/batch")
class BatchOffersView(MethodView):
    @require("read")
    @blp.arguments(BatchRequest)
    @blp.response(200, BatchResponse)
    def post(self, body):
        """Offers for up to RECSYS_MAX_BATCH customers at once."""
        ids = body["customer_ids"]
        limit = state().settings.max_batch
        if len(ids) > limit:
            raise ApiError(400, "bad_parameter", f"customer_ids: {len(ids)} ids, at most {limit} per request")
        results = rank_customers(ids, body["k"], body["channel"], body["as_of"])
        return jsonify({"model_version": state().model.current.version, "results": results})
