"""The Flask service through its test client: endpoints, auth, errors, events, OpenAPI, metrics."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from serving import create_app
from serving.auth import KeyStore
from tests.conftest import keyed_service


@pytest.fixture(scope="module")
def service(synth_bundle_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    app, keys = keyed_service(synth_bundle_dir, tmp, max_batch=50, max_body_bytes=20_000)
    return app, keys


@pytest.fixture
def client(service):
    return service[0].test_client()


def H(service, role="read"):
    return {"X-API-Key": service[1][role]}


def during(app) -> str:
    catalog = app.extensions["recsys"].model.current.catalog
    return str((catalog["start_date"].max() + pd.Timedelta(days=1)).date())


def test_health_and_readiness_need_no_key(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json["status"] == "ready"


def test_every_response_carries_the_security_headers_once(client, service):
    api = client.get(f"/v1/customers/C000001/offers?as_of={during(service[0])}", headers=H(service))
    asset = client.get("/docs/static/swagger-ui.css")
    page = client.get("/app/login")
    for response in (api, asset, page):
        assert response.status_code == 200
        for name, value in (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY")):
            assert response.headers.getlist(name) == [value]
        assert response.headers.getlist("Referrer-Policy") == ["no-referrer"]
    # per customer and changed by every event: never stored; a view's own caching stays its own
    assert api.headers.getlist("Cache-Control") == ["no-store"]
    assert "max-age=86400" in asset.headers.getlist("Cache-Control")[0]
    # the API opens no session: its answers set no cookie
    assert "Set-Cookie" not in api.headers


def test_keys_and_roles(client, service):
    r = client.get("/v1/segments")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    r = client.get("/v1/segments", headers={"X-API-Key": "rk_wrong"})
    assert r.status_code == 401
    event = {
        "events": [
            {
                "event_id": "auth-1",
                "customer_id": "C000001",
                "offer_id": "OF0001",
                "event": "viewed",
                "timestamp": "2024-06-01T10:00:00Z",
            }
        ]
    }
    r = client.post("/v1/events", json=event, headers=H(service, "read"))
    assert r.status_code == 403 and "'read' does not allow 'events'" in r.json["error"]["message"]
    assert client.post("/v1/events", json=event, headers=H(service, "events")).status_code == 201
    assert client.get("/v1/segments", headers=H(service, "events")).status_code == 200
    assert client.post("/v1/admin/reload", headers=H(service, "events")).status_code == 403


def test_a_key_revoked_by_name_is_refused_at_once(service, tmp_path):
    from click.testing import CliRunner

    from commands import main as cli

    keys = tmp_path / "keys.json"
    app = create_app({**_settings_of(service), "api_keys_file": str(keys)})
    store = KeyStore(keys)
    partner, ours = store.create("read", "agency"), store.create("read", "email platform")
    c = app.test_client()
    assert c.get("/v1/segments", headers={"X-API-Key": partner}).status_code == 200
    listed = CliRunner().invoke(cli, ["keys", "list", "--file", str(keys)])
    assert "agency" in listed.output and partner not in listed.output
    out = CliRunner().invoke(cli, ["keys", "revoke", "--name", "agency", "--file", str(keys)])
    assert out.exit_code == 0 and "revoked" in out.output
    assert c.get("/v1/segments", headers={"X-API-Key": partner}).status_code == 401  # no restart
    assert c.get("/v1/segments", headers={"X-API-Key": ours}).status_code == 200
    missing = CliRunner().invoke(cli, ["keys", "revoke", "--name", "agency", "--file", str(keys)])
    assert missing.exit_code != 0 and "no key named" in missing.output
    keys.write_text("{ half written")  # a bad edit keeps the keys that were
    assert c.get("/v1/segments", headers={"X-API-Key": ours}).status_code == 200


def _settings_of(service) -> dict:
    s = service[0].extensions["recsys"].settings
    return {"model_uri": s.model_uri, "events_url": s.events_url}


def test_keys_are_stored_only_as_hashes(service, tmp_path):
    store = KeyStore(tmp_path / "k.json")
    key = store.create("read")
    text = (tmp_path / "k.json").read_text()
    assert key not in text and store.lookup(key).role == "read"
    assert store.lookup(key[:-1]) is None
    with pytest.raises(ValueError, match="role must be one of read, events, admin"):
        store.create("root")


def test_offers_for_a_customer(client, service):
    app = service[0]
    r = client.get(f"/v1/customers/C000002/offers?k=3&as_of={during(app)}", headers=H(service))
    assert r.status_code == 200
    body = r.json
    assert body["customer_id"] == "C000002" and body["cold_start"] is False
    assert 1 <= len(body["offers"]) <= 3
    first = body["offers"][0]
    assert {
        "offer_id",
        "name",
        "offer_type",
        "value",
        "score",
        "p_redeem",
        "expected_value",
        "reason",
        "start_date",
        "end_date",
    } <= set(first)
    assert [o["rank"] for o in body["offers"]] == list(range(1, len(body["offers"]) + 1))
    assert all(o["start_date"] <= during(app) <= o["end_date"] for o in body["offers"])


def test_unknown_customer_gets_cold_start_offers(client, service):
    r = client.get(f"/v1/customers/someone-new/offers?as_of={during(service[0])}", headers=H(service))
    assert r.status_code == 200 and r.json["cold_start"] is True and r.json["offers"]


@pytest.mark.parametrize(
    "query, name", [("k=0", "k"), ("k=abc", "k"), ("channel=fax", "channel"), ("as_of=tomorrowish", "as_of")]
)
def test_bad_parameters_are_named(client, service, query, name):
    r = client.get(f"/v1/customers/C000001/offers?{query}", headers=H(service))
    assert r.status_code == 400
    assert r.json["error"]["code"] == "bad_parameter" and r.json["error"]["message"].startswith(f"{name}:")


def test_batch_offers(client, service):
    ids = ["C000001", "C000003", "nobody"]
    r = client.post(
        "/v1/offers/batch", json={"customer_ids": ids, "k": 2, "as_of": during(service[0])}, headers=H(service)
    )
    assert r.status_code == 200
    assert [x["customer_id"] for x in r.json["results"]] == ids
    assert r.json["results"][2]["cold_start"] is True
    too_many = client.post(
        "/v1/offers/batch", json={"customer_ids": [f"C{i:06d}" for i in range(51)]}, headers=H(service)
    )
    assert too_many.status_code == 400 and "at most 50" in too_many.json["error"]["message"]
    missing = client.post("/v1/offers/batch", json={"k": 2}, headers=H(service))
    assert missing.status_code == 400 and missing.json["error"]["message"].startswith("customer_ids:")
    huge = client.post("/v1/offers/batch", data="x" * 30_000, content_type="application/json", headers=H(service))
    assert huge.status_code == 413 and huge.json["error"]["code"] == "too_large"


def test_churn_risk(client, service):
    r = client.get("/v1/customers/C000001/churn-risk", headers=H(service))
    body = r.json
    assert r.status_code == 200 and 0 <= body["churn_probability"] <= 1
    assert body["risk_band"] in ("low", "medium", "high") and isinstance(body["reasons"], list)
    assert {"segment", "p_alive", "model_version"} <= set(body)
    r = client.get("/v1/customers/nobody/churn-risk", headers=H(service))
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_at_risk_pages_cover_the_list_in_order(client, service):
    seen, cursor = [], None
    while True:
        url = "/v1/churn/at-risk?min_risk=0.3&limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=H(service)).json
        seen += page["customers"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == page["total"] and len({c["customer_id"] for c in seen}) == len(seen)
    assert all(c["churn_probability"] >= 0.3 for c in seen)
    value = [c["churn_probability"] * max(c["total_spend"], 0) for c in seen]
    assert value == sorted(value, reverse=True)
    high = client.get("/v1/churn/at-risk?min_risk=0&band=high&limit=1000", headers=H(service)).json["customers"]
    assert high and all(c["risk_band"] == "high" for c in high)
    bad = client.get("/v1/churn/at-risk?cursor=notacursor", headers=H(service))
    assert bad.status_code == 400 and bad.json["error"]["message"].startswith("cursor:")


def test_at_risk_as_csv(client, service):
    for kwargs in ({"headers": {**H(service), "Accept": "text/csv"}}, {"headers": H(service), "query": "&format=csv"}):
        url = "/v1/churn/at-risk?min_risk=0.3" + kwargs.get("query", "")
        r = client.get(url, headers=kwargs["headers"])
        assert r.status_code == 200 and r.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
        total = client.get("/v1/churn/at-risk?min_risk=0.3", headers=H(service)).json["total"]
        assert len(rows) == total and "churn_probability" in rows[0]
        version = service[0].extensions["recsys"].model.current.version
        for row in rows:
            assert isinstance(json.loads(row["reasons"]), list)  # a JSON array: any reason text survives
            assert len(row["churn_probability"].split(".")[-1]) <= 4 and len(row["total_spend"].split(".")[-1]) <= 2
            assert row["model_version"] == (version or "")


def test_at_risk_filters_name_what_they_do_not_know(client, service):
    bundle = service[0].extensions["recsys"].model.current.bundle
    segment = bundle.customers["segment"].dropna().iloc[0]
    exact = client.get(f"/v1/churn/at-risk?min_risk=0&segment={segment}", headers=H(service)).json
    loud = client.get(f"/v1/churn/at-risk?min_risk=0&segment={segment.upper()}", headers=H(service)).json
    assert exact["total"] > 0 and loud["total"] == exact["total"]  # case aside
    bad = client.get("/v1/churn/at-risk?segment=nobody-here", headers=H(service))
    assert bad.status_code == 422 and segment in bad.json["error"]["message"]
    page = client.get("/v1/churn/at-risk?band=medium", headers=H(service)).json
    assert page["total"] == int((bundle.customers["risk_band"] == "medium").sum())  # no hidden min_risk
    version = service[0].extensions["recsys"].model.current.version
    assert all(c["model_version"] == version for c in page["customers"])


def test_segments(client, service):
    segs = client.get("/v1/segments", headers=H(service)).json["segments"]
    assert sum(s["customers"] for s in segs) == len(service[0].extensions["recsys"].model.current.bundle.customers)
    name = segs[0]["name"]
    page = client.get(f"/v1/segments/{name}/customers?limit=5", headers=H(service)).json
    assert len(page["customer_ids"]) == min(5, segs[0]["customers"]) and page["total"] == segs[0]["customers"]
    r = client.get("/v1/segments/Nope/customers", headers=H(service))
    assert r.status_code == 404 and "segments:" in r.json["error"]["message"]


def test_events_are_idempotent_and_feed_the_frequency_cap(client, service):
    app = service[0]
    day = during(app)
    offers = client.get(f"/v1/customers/C000004/offers?k=3&as_of={day}", headers=H(service)).json["offers"]
    top = offers[0]["offer_id"]
    # sent this morning: the cap counts the sends of the 30 days before the decision (now)
    sent_day = str((pd.Timestamp.now("UTC") - pd.Timedelta(days=1)).date())
    events = [
        {
            "event_id": f"cap-{i}",
            "customer_id": "C000004",
            "offer_id": top,
            "event": "sent",
            "timestamp": f"{sent_day}T0{i}:00:00Z",
        }
        for i in range(3)
    ]
    r = client.post("/v1/events", json={"events": events}, headers=H(service, "events"))
    assert r.status_code == 201 and r.json == {"received": 3, "stored": 3, "duplicates": 0}
    again = client.post("/v1/events", json={"events": events}, headers=H(service, "events")).json
    assert again == {"received": 3, "stored": 0, "duplicates": 3}
    later = client.get(f"/v1/customers/C000004/offers?k=3&as_of={day}", headers=H(service)).json["offers"]
    assert top not in [o["offer_id"] for o in later]  # sent 3 times in 30 days: capped
    bad = client.post("/v1/events", json={"events": [{**events[0], "event": "clicked"}]}, headers=H(service, "events"))
    assert bad.status_code == 400 and "events" in bad.json["error"]["message"]


def test_internal_errors_do_not_leak(client, service, monkeypatch):
    bundle = service[0].extensions["recsys"].model.current.bundle

    def boom(*a, **k):
        raise RuntimeError("secret detail C000001")

    monkeypatch.setattr(bundle, "churn_risk", boom)
    r = client.get("/v1/customers/C000001/churn-risk", headers=H(service))
    assert r.status_code == 500 and r.json == {
        "error": {"code": "internal_error", "message": "internal error; the request was logged"}
    }


def test_model_info_reload_and_metrics(client, service):
    app = service[0]
    info = client.get("/v1/model", headers=H(service)).json
    assert info["customers"] > 0 and "churn_model_roc_auc" in info["metrics"] and info["as_of"]
    before = app.extensions["recsys"].model.current
    r = client.post("/v1/admin/reload", headers=H(service, "admin"))
    assert r.status_code == 200
    assert app.extensions["recsys"].model.current is not before  # swapped for a fresh load
    text = client.get("/metrics").get_data(as_text=True)
    assert 'recsys_requests_total{endpoint="/v1/model",method="GET",status="200"}' in text
    assert "recsys_request_seconds_bucket" in text


def test_openapi_document_and_docs_page(client):
    spec = client.get("/openapi.json").json
    paths = set(spec["paths"])
    assert {
        "/v1/customers/{customer_id}/offers",
        "/v1/offers/batch",
        "/v1/customers/{customer_id}/churn-risk",
        "/v1/churn/at-risk",
        "/v1/segments",
        "/v1/segments/{name}/customers",
        "/v1/events",
        "/v1/model",
        "/v1/admin/reload",
    } <= paths
    assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert client.get("/docs").status_code == 200


def test_unloadable_model_reports_not_ready(tmp_path):
    app = create_app(
        {
            "model_uri": str(tmp_path / "missing"),
            "api_keys_file": str(tmp_path / "k.json"),
            "events_url": f"sqlite:///{tmp_path / 'e.db'}",
            "tracking_uri": f"sqlite:///{tmp_path / 'm.db'}",
            "local_copy": str(tmp_path / "no-copy"),
        }
    )
    c = app.test_client()
    assert c.get("/healthz").status_code == 200
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json["error"]["code"] == "not_ready"


def test_answers_come_from_the_cache_until_an_event_changes_them(client, service):
    """A second worker (another app on the same events database) stores the events: the first
    worker's cached answer must not survive them."""
    import json as jsonlib

    app = service[0]
    settings = app.extensions["recsys"].settings
    other = create_app(
        {"model_uri": settings.model_uri, "api_keys_file": settings.api_keys_file, "events_url": settings.events_url}
    )
    day = during(app)
    url = f"/v1/customers/C000005/offers?k=3&as_of={day}"

    def served(source):
        text = client.get("/metrics").get_data(as_text=True)
        line = next(x for x in text.splitlines() if x.startswith(f'recsys_offer_answers_total{{source="{source}"}}'))
        return float(line.split()[-1])

    first = client.get(url, headers=H(service))
    cached_before = served("cache")
    second = client.get(url, headers=H(service))
    assert first.data == second.data and served("cache") == cached_before + 1
    batch = client.post(
        "/v1/offers/batch", json={"customer_ids": ["C000005"], "k": 3, "as_of": day}, headers=H(service)
    ).json
    assert batch["results"][0] == jsonlib.loads(first.data)
    assert other.test_client().get(url, headers=H(service)).json == first.json  # same model, same answer

    top = first.json["offers"][0]["offer_id"]
    # sent this morning: the cap counts the sends of the 30 days before the decision (now)
    sent_day = str((pd.Timestamp.now("UTC") - pd.Timedelta(days=1)).date())
    events = [
        {
            "event_id": f"other-worker-{i}",
            "customer_id": "C000005",
            "offer_id": top,
            "event": "sent",
            "timestamp": f"{sent_day}T0{i}:00:00Z",
        }
        for i in range(3)
    ]
    assert (
        other.test_client().post("/v1/events", json={"events": events}, headers=H(service, "events")).status_code == 201
    )
    later = client.get(url, headers=H(service)).json["offers"]
    assert top not in [o["offer_id"] for o in later]


def test_without_the_answer_cache_the_answers_are_the_same(service, tmp_path):
    app = service[0]
    settings = app.extensions["recsys"].settings
    plain = create_app(
        {
            "model_uri": settings.model_uri,
            "api_keys_file": settings.api_keys_file,
            "events_url": f"sqlite:///{tmp_path / 'events.db'}",
            "answer_cache": 0,
        }
    )
    day = during(app)
    for customer in ("C000001", "C000009", "new-customer"):
        url = f"/v1/customers/{customer}/offers?k=4&as_of={day}"
        assert (
            plain.test_client().get(url, headers=H(service)).json == app.test_client().get(url, headers=H(service)).json
        )
    assert len(plain.extensions["recsys"].model.current.answers) == 0


def test_a_reload_announced_by_one_worker_is_followed_by_another(service, tmp_path):
    settings = service[0].extensions["recsys"].settings
    config = {
        "model_uri": settings.model_uri,
        "api_keys_file": settings.api_keys_file,
        "events_url": f"sqlite:///{tmp_path / 'events.db'}",
        "reload_file": str(tmp_path / "reload"),
    }
    one, two = create_app(config), create_app(config)
    before = two.extensions["recsys"].model.current
    assert two.extensions["recsys"].model.check() is False  # nothing announced yet
    r = one.test_client().post("/v1/admin/reload", headers=H(service, "admin"))
    assert r.status_code == 200 and (tmp_path / "reload").exists()
    assert one.extensions["recsys"].model.check() is False  # the announcer already has it
    assert two.extensions["recsys"].model.check() is True
    assert two.extensions["recsys"].model.current is not before
    assert two.extensions["recsys"].model.check() is False  # once per announcement


def test_query_strings_are_parsed_once_and_bad_ones_fail_every_time(client, service):
    from serving.web import Blueprint

    memo = Blueprint.ARGUMENTS_PARSER._memo
    day = during(service[0])
    query = f"k=2&channel=email&as_of={day}"
    for customer in ("C000001", "C000002"):
        r = client.get(f"/v1/customers/{customer}/offers?{query}", headers=H(service))
        assert r.status_code == 200 and len(r.json["offers"]) <= 2
    remembered = [v for (_, qs), v in memo.items() if qs == query.encode()]
    assert len(remembered) == 1 and remembered[0]["k"] == 2 and remembered[0]["channel"] == "email"
    for _ in range(2):  # never remembered: the second bad request fails like the first
        r = client.get(f"/v1/customers/C000001/offers?k=0&as_of={day}", headers=H(service))
        assert r.status_code == 400 and r.json["error"]["message"].startswith("k:")
    assert not any(qs == f"k=0&as_of={day}".encode() for _, qs in memo)


def test_batch_answers_are_the_rankers_ranking(client, service):
    """The JSON the service writes by hand is the ranker's ranking of each customer alone, field
    for field (numbers to six significant digits, so equal up to float32 rounding between the
    batch and one-customer code paths); the single endpoint says the same as the batch."""
    app = service[0]
    loaded = app.extensions["recsys"].model.current
    day = during(app)
    ids = [str(c) for c in loaded.bundle.customers.index[:40]] + ["nobody"]
    r = client.post("/v1/offers/batch", json={"customer_ids": ids, "k": 4, "as_of": day}, headers=H(service))
    assert r.status_code == 200
    prepared = loaded.prepared_on(pd.Timestamp(day))
    events = app.extensions["recsys"].events.frame()  # earlier tests posted some: caps apply
    now = pd.Timestamp.now("UTC").tz_localize(None)  # the service decides now
    records = loaded.catalog.set_index("offer_id")
    for cid, got in zip(ids, r.json["results"]):
        control = app.extensions["recsys"].settings.control  # the service holds back control groups
        want, held = loaded.bundle.ranker.decide(
            [cid], prepared, k=4, as_of=pd.Timestamp(day), events=events, control=control, decided_at=now
        )
        want = [dict(zip(want, row)) for row in zip(*(v.tolist() for v in want.values()))]
        assert got["held_out"] == held["offer_id"].tolist()
        assert got["customer_id"] == cid and got["model_version"] == loaded.version
        assert [o["offer_id"] for o in got["offers"]] == [w["offer_id"] for w in want]
        for o, w in zip(got["offers"], want):
            assert o["rank"] == w["rank"] and o["reason"] == w["reason"] and o["reason_code"] == w["reason_code"]
            for name in ("score", "p_redeem", "expected_value"):
                assert o[name] == pytest.approx(w[name], rel=1e-5)
            assert o["name"] == records.loc[o["offer_id"], "name"]
        single = client.get(f"/v1/customers/{cid}/offers?k=4&as_of={day}", headers=H(service))
        assert single.json == got
    assert r.json["results"][-1]["cold_start"] is True and r.json["results"][0]["cold_start"] is False


def test_six_significant_digits_as_printed():
    import numpy as np

    from serving.answers import sig6

    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.random(20_000),
            rng.random(20_000) * 10.0 ** rng.integers(-30, 30, 20_000),
            -rng.lognormal(0, 4, 20_000),
            [0.0, -0.0, 1.0, 1e22, 1e-17, 123456.5, 999999.5, 5e-324],
        ]
    )
    assert sig6(values) == [float(f"{v:.6g}") for v in values.tolist()]
    with pytest.raises(ValueError, match="not JSON compliant"):
        sig6(np.array([0.5, np.nan]))


def test_rate_limits_per_key_answer_429_with_retry_after(service, tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    a, b = keys.create("read", "a"), keys.create("read", "b")
    app = create_app({**_settings_of(service), "api_keys_file": str(tmp_path / "keys.json"), "rate_limit": "5/minute"})
    c = app.test_client()
    codes = [c.get("/v1/segments", headers={"X-API-Key": a}).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    r = c.get("/v1/segments", headers={"X-API-Key": a})
    assert r.json["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    assert c.get("/v1/segments", headers={"X-API-Key": b}).status_code == 200  # each key its own allowance
    assert all(c.get("/healthz").status_code == 200 for _ in range(10))  # never limited
