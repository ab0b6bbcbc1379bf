"""Churn risk of one customer and the at-risk list (retention teams)."""

from __future__ import annotations

import csv
import io
import json

from flask import Response, request, stream_with_context
from flask.views import MethodView

from recsys import constants as C
from recsys.errors import UnknownValueError
from recsys.io import json_safe
from serving.schemas import CUSTOMER_ID, AtRiskPage, AtRiskQuery, ChurnRisk, Error
from serving.web import ApiError, Blueprint, decode_cursor, encode_cursor, path_id, require, state

blp = Blueprint("churn", __name__, url_prefix="/v1", description="Churn risk and at-risk lists")

CUSTOMER_COLUMNS = list(C.CUSTOMER_COLUMNS)
CSV_COLUMNS = list(C.AT_RISK_COLUMNS)


@blp.route("/customers/<customer_id>/churn-risk", parameters=[CUSTOMER_ID])
class ChurnRiskView(MethodView):
    @require("read")
    @blp.response(200, ChurnRisk)
    @blp.alt_response(404, schema=Error, description="unknown customer")
    def get(self, customer_id):
        """Probability, band, reasons, segment, P(alive) of one customer."""
        loaded = state().model.current
        cid = loaded.parse_customer_id(path_id(customer_id))
        risk = loaded.bundle.churn_risk(cid)
        if risk is None:
            raise ApiError(404, "not_found", f"customer {customer_id} is not known to model version {loaded.version}")
        return {
            "customer_id": json_safe(cid),
            **{k: json_safe(v) for k, v in risk.items()},
            "model_version": loaded.version,
        }


def _row(cid, r, version=None) -> dict:
    return {
        "customer_id": json_safe(cid),
        **{c: json_safe(r[i]) for i, c in enumerate(CUSTOMER_COLUMNS)},
        "model_version": version,
    }


# Decimals in the CSV download: what each figure means to a reader (the JSON keeps full precision).
CSV_DECIMALS = {"churn_probability": 4, "p_alive": 4, "expected_purchases": 2, "total_spend": 2}


@blp.route("/churn/at-risk")
class AtRiskView(MethodView):
    @require("read")
    @blp.arguments(AtRiskQuery(), location="query")
    @blp.response(200, AtRiskPage)
    @blp.doc(
        responses={
            "200": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/AtRiskPage"}},
                    "text/csv": {
                        "schema": {"type": "string"},
                        "example": "customer_id,churn_probability,risk_band,reasons,...,model_version",
                    },
                }
            },
            "422": {
                "description": "a segment or cluster the model does not have",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        }
    )
    def get(self, q):
        """Customers at risk, highest risk x value first, paginated by cursor; CSV (streamed) with
        ``Accept: text/csv`` or ``format=csv``, where the whole list from the cursor on is sent."""
        loaded = state().model.current
        rows = at_risk_rows(loaded.bundle, q)
        start = decode_cursor(q["cursor"], loaded.version)
        wants_csv = q["format"] == "csv" or (q["format"] is None and request.accept_mimetypes.best == "text/csv")
        if wants_csv:
            return at_risk_csv(rows.iloc[start:], loaded.version)
        page = rows.iloc[start : start + q["limit"]]
        values = page[CUSTOMER_COLUMNS].to_numpy(dtype=object)
        end = start + len(page)
        return {
            "customers": [_row(cid, v, loaded.version) for cid, v in zip(page.index, values)],
            "next_cursor": encode_cursor(end, loaded.version) if end < len(rows) else None,
            "total": len(rows),
        }


def at_risk_rows(bundle, q: dict):
    """The at-risk list for the filters and order of ``q`` (schemas.AtRiskQuery): the API's and
    the analyst page's, one implementation."""
    min_risk = q["min_risk"] if q.get("min_risk") is not None else (0.0 if q.get("band") else C.HIGH_RISK)
    try:
        return bundle.at_risk(
            min_risk=min_risk,
            band=q.get("band"),
            segment=q.get("segment"),
            cluster=q.get("cluster"),
            min_value=q.get("min_value"),
            sort=q.get("sort") or "value",
            descending=q.get("order", "desc") != "asc",
        )
    except UnknownValueError as exc:  # well-formed, but not the model's
        raise ApiError(422, "unknown_value", str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from None


def at_risk_csv(rows, version=None):
    """The list as a streamed CSV download (AT_RISK_COLUMNS and model_version): the API's and
    the page's. ``reasons`` is a JSON array (a reason may hold any character); figures are
    rounded to CSV_DECIMALS."""

    def generate():
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([*CSV_COLUMNS, "model_version"])
        values = rows[CUSTOMER_COLUMNS].to_numpy(dtype=object)
        for i, (cid, v) in enumerate(zip(rows.index, values)):
            row = _row(cid, v, version)
            row["reasons"] = json.dumps(row["reasons"] or [], ensure_ascii=False)
            for col, places in CSV_DECIMALS.items():
                if isinstance(row.get(col), float):
                    row[col] = round(row[col], places)
            writer.writerow([row[c] for c in (*CSV_COLUMNS, "model_version")])
            if i % 500 == 499:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=at-risk.csv"},
    )
