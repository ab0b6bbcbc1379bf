"""Segments and their customers."""

from __future__ import annotations

from flask.views import MethodView

from recsys.io import json_safe
from serving.schemas import SEGMENT_NAME, PageQuery, SegmentCustomers, Segments
from serving.web import ApiError, Blueprint, decode_cursor, encode_cursor, require, state

blp = Blueprint("segments", __name__, url_prefix="/v1", description="Customer segments")


@blp.route("/segments")
class SegmentsView(MethodView):
    @require("read")
    @blp.response(200, Segments)
    def get(self):
        """Every segment with its size, mean churn probability and mean spend."""
        table = state().model.current.bundle.segments()
        return {
            "segments": [{"name": name, **{k: json_safe(v) for k, v in row.items()}} for name, row in table.iterrows()]
        }


@blp.route("/segments/<name>/customers", parameters=[SEGMENT_NAME])
class SegmentCustomersView(MethodView):
    @require("read")
    @blp.arguments(PageQuery(), location="query")
    @blp.response(200, SegmentCustomers)
    def get(self, q, name):
        """Customer ids of a segment, paginated by cursor."""
        loaded = state().model.current
        customers = loaded.bundle.customers
        ids = customers.index[customers["segment"] == name]
        if not len(ids):
            known = ", ".join(sorted(customers["segment"].dropna().unique()))
            raise ApiError(404, "not_found", f"no segment {name!r}; segments: {known}")
        start = decode_cursor(q["cursor"], loaded.version)
        page = ids[start : start + q["limit"]]
        end = start + len(page)
        return {
            "segment": name,
            "customer_ids": [json_safe(c) for c in page],
            "next_cursor": encode_cursor(end, loaded.version) if end < len(ids) else None,
            "total": len(ids),
        }
