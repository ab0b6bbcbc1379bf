"""Bad input, as a demanding client sends it: every case is a 4xx in the service's JSON error
shape, never a 500, an HTML page or garbage accepted; and events keep the data contract."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

import pandas as pd
import pytest

from serving import create_app
from serving.model import Loaded
from tests.conftest import keyed_service


@pytest.fixture(scope="module")
def service(synth_bundle_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inputs")
    app, keys = keyed_service(synth_bundle_dir, tmp, max_batch=50)
    return app, keys, tmp


@pytest.fixture
def client(service):
    return service[0].test_client()


def H(service, role="read"):
    return {"X-API-Key": service[1][role]}


def offer_id(service):
    return service[0].extensions["recsys"].model.current.catalog["offer_id"].iloc[0]


def event(i, service, **changes):
    return {
        "event_id": f"in-{i}",
        "customer_id": "C000002",
        "offer_id": offer_id(service),
        "event": "sent",
        "timestamp": "2024-06-01T10:00:00Z",
        **changes,
    }


def assert_error(r, status=None):
    assert 400 <= r.status_code < (600 if status and status >= 500 else 500), (r.status_code, r.get_data()[:300])
    if status is not None:
        assert r.status_code == status, r.get_data(as_text=True)[:300]
    assert r.is_json, r.get_data(as_text=True)[:300]
    body = r.json
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return body["error"]


OFFERS = "/v1/customers/C000001/offers"
GET_CASES = [
    f"{OFFERS}?k=2.5",
    f"{OFFERS}?k=true",
    f"{OFFERS}?k=1_0",
    f"{OFFERS}?k=%D9%A3",  # Arabic-Indic three
    f"{OFFERS}?k=-1",
    f"{OFFERS}?k=101",
    f"{OFFERS}?k=",
    f"{OFFERS}?k=1e1",
    f"{OFFERS}?channel=FAX",
    f"{OFFERS}?as_of=2024-13-01",
    f"{OFFERS}?as_of=yesterday",
    f"{OFFERS}?as_of=99999-01-01",
    f"{OFFERS}?unknown=1",
    "/v1/customers/" + "x" * 129 + "/offers",
    "/v1/customers/" + "x" * 10_000 + "/offers",
    "/v1/customers/a%00b/offers",
    "/v1/customers/a%0Ab/churn-risk",
    "/v1/churn/at-risk?limit=0",
    "/v1/churn/at-risk?limit=2.5",
    "/v1/churn/at-risk?limit=10001",
    "/v1/churn/at-risk?min_risk=2",
    "/v1/churn/at-risk?min_risk=nan",
    "/v1/churn/at-risk?band=extreme",
    "/v1/churn/at-risk?sort=name",
    "/v1/churn/at-risk?order=sideways",
    "/v1/churn/at-risk?format=xml",
    "/v1/churn/at-risk?cursor=not-a-cursor",
    "/v1/churn/at-risk?cursor=%2F%2F%2F",
    "/v1/churn/at-risk?segment=",
    "/v1/churn/at-risk?segment=nobody-here",
    "/v1/churn/at-risk?cursor=" + "A" * 300,
    "/v1/segments/nobody/customers",
    "/v1/segments/x/customers?limit=-5",
    "/v1/nowhere",
]


@pytest.mark.parametrize("url", GET_CASES, ids=range(len(GET_CASES)))
def test_bad_get_requests_are_named_4xx(client, service, url):
    assert_error(client.get(url, headers=H(service)))


def test_forged_cursors_are_refused(client, service):
    version = service[0].extensions["recsys"].model.current.version or "unversioned"
    for forged in (f"{version}.-1", f"{version}.-100", f"{version}.01", "x" * 70 + ".1", f"{version}.1e3"):
        err = assert_error(client.get(f"/v1/churn/at-risk?cursor={forged}", headers=H(service)), 400)
        assert err["message"].startswith("cursor:")
    stale = assert_error(client.get("/v1/churn/at-risk?cursor=v0.5", headers=H(service)), 409)
    assert stale["code"] == "stale_cursor"
    ok = client.get(f"/v1/churn/at-risk?limit=1&cursor={version}.1", headers=H(service))
    assert ok.status_code == 200
    past = client.get(f"/v1/churn/at-risk?cursor={version}.999999", headers=H(service)).json
    assert past["customers"] == [] and past["next_cursor"] is None  # past the end: an empty page, never a loop


BATCH_CASES = [
    {"customer_ids": [{"a": 1}]},
    {"customer_ids": [[1364]]},
    {"customer_ids": [True]},
    {"customer_ids": [1364.9]},
    {"customer_ids": [None]},
    {"customer_ids": [""]},
    {"customer_ids": ["x" * 129]},
    {"customer_ids": ["a\u0000b"]},
    {"customer_ids": [2**64]},
    {"customer_ids": []},
    {"customer_ids": "C000001"},
    {"customer_ids": ["C000001"], "k": 2.5},
    {"customer_ids": ["C000001"], "k": "2"},  # in JSON a number is a number
    {"customer_ids": ["C000001"], "k": True},
    {"customer_ids": ["C000001"], "k": 0},
    {"customer_ids": ["C000001"], "channel": "fax"},
    {"customer_ids": ["C000001"], "as_of": "2024-02-30"},
    {"customer_ids": ["C000001"], "extra": 1},
    [],
    "C000001",
    None,
]


@pytest.mark.parametrize("body", BATCH_CASES, ids=range(len(BATCH_CASES)))
def test_bad_batch_bodies_are_named_4xx(client, service, body):
    assert_error(client.post("/v1/offers/batch", json=body, headers=H(service)))


RAW_BODIES = [
    ("1e400 in ids", '{"customer_ids": [1e400]}', "application/json"),
    ("NaN in ids", '{"customer_ids": [NaN]}', "application/json"),
    ("malformed JSON", '{"customer_ids": [', "application/json"),
    ("trailing garbage", '{"customer_ids": ["C000001"]} x', "application/json"),
    ("not UTF-8", b'{"customer_ids": ["\xff"]}', "application/json"),
    ("5,000 levels deep", '{"customer_ids": ' + "[" * 5000 + "]" * 5000 + "}", "application/json"),
    ("form body", "customer_ids=C000001", "application/x-www-form-urlencoded"),
    ("text body", '{"customer_ids": ["C000001"]}', "text/plain"),
    ("no content type", '{"customer_ids": ["C000001"]}', None),
]


@pytest.mark.parametrize(("what", "data", "content_type"), RAW_BODIES, ids=[c[0] for c in RAW_BODIES])
def test_bodies_that_are_not_json_are_named(client, service, what, data, content_type):
    headers = H(service) if content_type is None else {**H(service), "Content-Type": content_type}
    err = assert_error(client.post("/v1/offers/batch", data=data, headers=headers))
    if content_type != "application/json":
        assert err["code"] == "unsupported_media_type" and "application/json" in err["message"]
    elif what in ("malformed JSON", "5,000 levels deep", "trailing garbage"):
        assert err["code"] == "bad_json"


def test_only_canonical_ids_name_a_customer():
    model = SimpleNamespace(id_is_int=True)
    parse = Loaded.parse_customer_id
    assert parse(model, "1364") == 1364 and parse(model, 1364) == 1364 and parse(model, "-7") == -7
    for other in ("1_364", "\u0661\u0663\u0666\u0664", " 1364", "1364 ", "+1364", "01364", "1364.0", "0x554"):
        assert parse(model, other) == other  # another id: unknown to the model, answered as cold start
    assert parse(SimpleNamespace(id_is_int=False), 1364) == "1364"


def test_a_non_canonical_id_gets_cold_start_not_another_customers_offers(client, service):
    day = "2024-06-01"
    known = client.get(f"/v1/customers/C000001/offers?as_of={day}", headers=H(service)).json
    other = client.get(f"/v1/customers/C000001%20/offers?as_of={day}", headers=H(service)).json
    assert known["cold_start"] is False and other["cold_start"] is True and other["customer_id"] == "C000001 "


EVENT_CASES = [
    ("future timestamp", {"timestamp": "2100-01-01T00:00:00Z"}, "timestamp", "in the future"),
    ("year 9999", {"timestamp": "9999-01-01T00:00:00Z"}, "timestamp", "outside the representable dates"),
    ("year 1", {"timestamp": "0001-01-01T00:00:00Z"}, "timestamp", ""),
    ("not a timestamp", {"timestamp": "yesterday"}, "timestamp", "ISO 8601"),
    ("unknown offer", {"offer_id": "no-such-offer"}, "offer_id", "unknown offer"),
    ("object as an id", {"customer_id": {"x": [1]}}, "customer_id", ""),
    ("boolean id", {"offer_id": True}, "offer_id", ""),
    ("unknown event", {"event": "clicked"}, "event", ""),
    ("propensity above 1", {"propensity": 1.5}, "propensity", ""),
    ("long event id", {"event_id": "e" * 129}, "event_id", ""),
    ("NUL in id", {"customer_id": "a\u0000b"}, "customer_id", ""),
    ("id too long for the store", {"customer_id": "c" * 129}, "customer_id", ""),
]


@pytest.mark.parametrize(("what", "change", "field", "words"), EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
def test_events_breaking_the_contract_are_refused_by_index_and_field(client, service, what, change, field, words):
    events = [event(f"ok-{what}", service), event(f"bad-{what}", service, **change)]
    r = client.post("/v1/events", json={"events": events}, headers=H(service, "events"))
    err = assert_error(r)
    assert field in err["message"] and words in err["message"]
    if err["code"] == "invalid_events":  # well-formed, refused by the data contract: the event's index is named
        assert r.status_code == 400 and f"events[1].{field}" in err["message"]
    else:  # malformed: refused by the request schema
        assert err["code"] == "bad_parameter"
    stored = service[0].extensions["recsys"].events.frame()
    assert f"in-ok-{what}" not in set(stored["event_id"])  # nothing of the request was stored


def test_an_event_id_with_another_payload_is_a_conflict(client, service):
    first = event("conflict", service)
    ok = client.post("/v1/events", json={"events": [first]}, headers=H(service, "events"))
    assert ok.status_code == 201 and ok.json["stored"] == 1
    same = client.post("/v1/events", json={"events": [first]}, headers=H(service, "events"))
    assert same.status_code == 201 and same.json["duplicates"] == 1
    changed = {**first, "event": "redeemed"}
    fresh = event("conflict-fresh", service)
    err = assert_error(client.post("/v1/events", json={"events": [fresh, changed]}, headers=H(service, "events")), 409)
    assert "in-conflict" in err["message"]
    assert "in-conflict-fresh" not in set(service[0].extensions["recsys"].events.frame()["event_id"])
    twice = [event("twice", service), event("twice", service, event="viewed")]
    assert_error(client.post("/v1/events", json={"events": twice}, headers=H(service, "events")), 409)


def test_events_under_write_contention_get_503_with_retry_after(client, service):
    app, _, tmp = service
    store = app.extensions["recsys"].events
    locker = sqlite3.connect(tmp / "events.db", timeout=0.1)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database past the store's busy timeout
    try:
        r = client.post("/v1/events", json={"events": [event("busy", service)]}, headers=H(service, "events"))
    finally:
        locker.rollback()
        locker.close()
    err = assert_error(r, 503)
    assert err["code"] == "events_unavailable" and r.headers["Retry-After"] == "1"
    assert "in-busy" not in set(store.frame()["event_id"])
    again = client.post("/v1/events", json={"events": [event("busy", service)]}, headers=H(service, "events"))
    assert again.status_code == 201 and again.json["stored"] == 1


def test_the_openapi_document_states_what_ids_are(client):
    spec = client.get("/openapi.json").json
    text = json.dumps(spec)
    assert "oneOf" in text and '"maxLength": 128' in text
    assert pd.notna(spec["paths"]["/v1/events"]["post"]["responses"].get("409"))


def test_an_empty_answer_says_why(client, service):
    r = client.get("/v1/customers/C000001/offers?as_of=2031-01-01", headers=H(service))
    assert r.status_code == 200 and r.json["offers"] == []
    assert "no offer of the catalog is valid on 2031-01-01" in r.json["notice"] and "run from 2024" in r.json["notice"]
    ok = client.get("/v1/customers/C000001/offers?as_of=2024-06-01", headers=H(service)).json
    assert ok["offers"] and "notice" not in ok


def test_without_the_events_store_offers_are_answered_and_readyz_says_degraded(service, tmp_path):
    import time as _time

    app = create_app(
        {
            "model_uri": service[0].extensions["recsys"].settings.model_uri,
            "api_keys_file": str(service[2] / "keys.json"),
            "events_url": f"sqlite:///{tmp_path / 'events.db'}",
        }
    )
    st = app.extensions["recsys"]

    def down(*a, **k):
        raise sqlite3.OperationalError("unable to open database file")

    st.events.rows_by_customer = down
    st.events.ping = down
    st.events.add = down
    c = app.test_client()
    t = _time.perf_counter()
    for _ in range(20):
        r = c.get("/v1/customers/C000001/offers?as_of=2024-06-01", headers=H(service))
        assert r.status_code == 200 and r.json["offers"] and "events store is unreachable" in r.json["notice"]
    assert _time.perf_counter() - t < 20
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "degraded"
    assert ready.json["dependencies"]["events_store"]["ok"] is False
    assert st.events_health._suppressed >= 19  # logged once per interval, not per request
