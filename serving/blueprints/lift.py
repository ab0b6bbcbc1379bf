"""Measured lift of offers and campaigns against their randomised control groups (dashboards)."""

from __future__ import annotations

from flask.views import MethodView

from recsys.io import json_safe
from serving.schemas import LiftQuery, LiftTable
from serving.web import Blueprint, require, state

blp = Blueprint("lift", __name__, url_prefix="/v1", description="Lift against control groups")

NO_LIFT = "the model's training data held no randomised control group: lift cannot be measured"


@blp.route("/lift")
class LiftView(MethodView):
    @require("read")
    @blp.arguments(LiftQuery(), location="query")
    @blp.response(200, LiftTable)
    def get(self, q):
        """Lift, incremental profit and their 95% intervals per offer and campaign, as measured at
        training time over the data and the events store (recsys.reporting.lift); filter by
        ``offer_id`` or ``campaign_id``."""
        loaded = state().model.current
        table = loaded.bundle.lift
        if table is None:
            return {"rows": [], "model_version": loaded.version, "note": NO_LIFT}
        rows = table
        if q["offer_id"] is not None:
            rows = rows[(rows["level"] == "offer") & (rows["group"].astype(str) == q["offer_id"])]
        if q["campaign_id"] is not None:
            rows = rows[(rows["level"] == "campaign") & (rows["group"].astype(str) == q["campaign_id"])]
        records = [{k: json_safe(v) for k, v in r.items()} for r in rows.to_dict("records")]
        note = "" if records else "no offer or campaign matches the filter"
        return {"rows": records, "model_version": loaded.version, "note": note}
