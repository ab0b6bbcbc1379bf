"""The analyst page's views: each reads the loaded model and the library's functions, as the
JSON API does (no second implementation of any number)."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import pandas as pd
from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from recsys import constants as C
from recsys.offers import EventArrays
from recsys.reporting import plots
from serving.blueprints.admin import model_info
from serving.blueprints.churn import at_risk_csv, at_risk_rows
from serving.pages import auth
from serving.pages.format import FILTERS
from serving.schemas import AtRiskQuery
from serving.web import ApiError, state

blp = Blueprint("pages", __name__, url_prefix="/app", template_folder="templates", static_folder="static")
for name, fn in FILTERS.items():
    blp.add_app_template_filter(fn, name)
PAGE_SIZE = 50
QUERY = AtRiskQuery()


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.get("/login")
def login():
    return render_template("pages/login.html", next=request.args.get("next", ""), error=None)


@blp.post("/login")
def login_post():
    key = state().keys.lookup(request.form.get("key", "").strip())
    target = request.form.get("next")
    if key is None or not auth.allowed(key.role, "read"):
        error = "That key is not known." if key is None else f"This key's role ({key.role}) may not read."
        return render_template("pages/login.html", next=target or "", error=error), 401
    auth.open_session(key)
    return redirect(auth.safe_next(target))


@blp.post("/logout")
def logout():
    if not auth.token_ok(request.form.get("csrf")):
        abort(400)
    auth.session.clear()
    return redirect(url_for("pages.login"))


@blp.get("/")
@auth.login_required
def index():
    return redirect(url_for("pages.at_risk"))


def _filters() -> dict:
    """The list's filters from the query string, validated by the API's own schema."""
    args = {k: v for k, v in request.args.items() if v != "" and k in QUERY.fields}
    problems = QUERY.validate(args)
    if problems:
        raise ApiError(400, "bad_parameter", "; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()))
    return QUERY.load(args)


@blp.get("/at-risk")
@auth.login_required
def at_risk():
    loaded = state().model.current
    q = _filters()
    rows = at_risk_rows(loaded.bundle, q)
    page = max(int(request.args.get("page", 1) or 1), 1)
    shown = rows.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    offers = _first_offers(loaded, shown.index.tolist())
    customers = loaded.bundle.customers
    return render_template(
        "pages/at_risk.html",
        rows=shown,
        offers=offers,
        total=len(rows),
        page=page,
        pages=max((len(rows) + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        q=q,
        args=request.args,
        segments=sorted(customers["segment"].dropna().unique()),
        clusters=sorted(customers["cluster"].dropna().astype(str).unique()),
        bands=C.RISK_BAND_NAMES,
        model=loaded,
        offers_day=_offers_day(loaded),
    )


@blp.get("/at-risk.csv")
@auth.login_required
def at_risk_download():
    loaded = state().model.current
    return at_risk_csv(at_risk_rows(loaded.bundle, _filters()), loaded.version)


def _offers_day(loaded) -> pd.Timestamp:
    """The day offers are shown for: the model's date, or when no offer of the catalog is valid
    then, the last day before it on which one was (a historical catalog)."""
    day = pd.Timestamp(loaded.bundle.config.get("as_of") or pd.Timestamp.now().normalize())
    catalog = loaded.catalog
    if len(catalog) and not ((catalog[C.START_DATE] <= day) & (catalog[C.END_DATE] >= day)).any():
        ended = catalog.loc[catalog[C.END_DATE] < day, C.END_DATE]
        day = ended.max() if len(ended) else catalog[C.START_DATE].min()
    return pd.Timestamp(day).normalize()


def _decide(loaded, ids: list, k: int):
    """The service's decision for these customers on the page's day, decided now: (ranked,
    held back, their event rows, the day)."""
    st = state()
    day = _offers_day(loaded)
    rows = st.events.rows_by_customer(ids, id_type=int if loaded.id_is_int else str)
    ranked, held = loaded.bundle.ranker.decide(
        ids,
        loaded.prepared_on(day),
        k=k,
        as_of=day,
        events=EventArrays.from_rows(rows),
        control=st.settings.control,
        decided_at=pd.Timestamp.now("UTC").tz_localize(None),
    )
    return ranked, held, rows, day


def _first_offers(loaded, ids: list) -> dict:
    """The offer each customer would get first (with control groups, as the service decides)."""
    if not ids:
        return {}
    ranked, _, _, _ = _decide(loaded, ids, k=1)
    names = loaded.catalog.set_index(C.OFFER_ID)[C.NAME]
    return {c: names.get(o, str(o)) for c, o in zip(ranked[C.CUSTOMER_ID], ranked[C.OFFER_ID])}


@blp.get("/customers/<customer_id>")
@auth.login_required
def customer(customer_id):
    st = state()
    loaded = st.model.current
    cid = loaded.parse_customer_id(customer_id)
    risk = loaded.bundle.churn_risk(cid)
    if risk is None:
        return render_template("pages/not_found.html", what=f"customer {customer_id}"), 404
    ranked, held, rows, day = _decide(loaded, [cid], k=10)
    names = loaded.catalog.set_index(C.OFFER_ID)[C.NAME]
    offers = pd.DataFrame(ranked).assign(name=lambda d: d[C.OFFER_ID].map(names))
    events = [{"offer": names.get(o, o), "event": e, "timestamp": t} for o, e, t in rows.get(cid, ())]
    return render_template(
        "pages/customer.html",
        cid=cid,
        risk=risk,
        offers=offers,
        model=loaded,
        day=day,
        held=[names.get(o, o) for o in held[C.OFFER_ID]],
        events=events,
    )


@blp.get("/segments")
@auth.login_required
def segments():
    bundle = state().model.current.bundle
    return render_template(
        "pages/segments.html",
        segments=bundle.segments("segment"),
        clusters=bundle.segments("cluster"),
        model=state().model.current,
    )


@blp.get("/lift")
@auth.login_required
def lift():
    loaded = state().model.current
    return render_template("pages/lift.html", lift=loaded.bundle.lift, model=loaded)


@blp.get("/model")
@auth.login_required
def model():
    loaded = state().model.current
    info = model_info()
    metrics = info["metrics"]
    rows = [
        {
            "metric": m,
            "model": metrics.get(m),
            "baselines": [
                (b, metrics[b]) for b in (*C.GATE_BASELINES[m], *C.OTHER_BASELINES.get(m, ())) if b in metrics
            ],
        }
        for m in C.GATE_METRICS
        if m in metrics
    ]
    return render_template("pages/model.html", info=info, rows=rows, model=loaded, mlflow_ui=state().settings.mlflow_ui)


@blp.get("/charts/<name>.svg")
@auth.login_required
def chart(name: str):
    """The page's figures, drawn by recsys.reporting.plots as SVG."""
    loaded = state().model.current
    bundle, as_of = loaded.bundle, loaded.bundle.config.get("as_of", "")
    if name == "segments":
        fig = plots.segment_overview(bundle.segments("segment"), f"RFM segments, as of {as_of}")
    elif name == "clusters":
        fig = plots.segment_overview(
            bundle.segments("cluster").rename(index=lambda c: f"cluster {c}"), f"Behavioural clusters, as of {as_of}"
        )
    elif name == "lift" and bundle.lift is not None and (bundle.lift["control"] > 0).any():
        measured = bundle.lift[bundle.lift["control"] > 0]
        fig = plots.lift_intervals(measured.assign(group=measured["level"] + " " + measured["group"].astype(str)))
    elif name.startswith("history-"):
        cid = loaded.parse_customer_id(name[len("history-") :])
        fig = plots.purchase_history(bundle.customer_history(cid), f"Customer {cid}: weekly spend to {as_of}")
    else:
        abort(404)
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return Response(buf.getvalue(), mimetype="image/svg+xml")
