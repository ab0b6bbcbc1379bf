"""Control groups in the service: the configured share held back, the same customers in every
worker and every request, each held-back offer recorded once however many requests ask, the
lift endpoint, and the training run that measures lift on randomised data."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.store_events import read_event_store
from recsys.incrementality import ControlGroups
from serving import create_app
from serving.auth import KeyStore
from tests.procs import child_env, free_port, stop_group

BIN = Path(sys.executable).parent


def _app(bundle_dir, tmp, **settings):
    store = KeyStore(tmp / "keys.json")
    keys = {role: store.create(role) for role in ("read", "admin")}
    app = create_app(
        {
            "model_uri": str(bundle_dir),
            "api_keys_file": str(tmp / "keys.json"),
            "events_url": f"sqlite:///{tmp / 'events.db'}",
            **settings,
        }
    )
    return app, keys


def _during(app) -> str:
    catalog = app.extensions["recsys"].model.current.catalog
    return str((catalog["start_date"].max() + pd.Timedelta(days=1)).date())


def test_the_configured_share_is_held_back_and_recorded_once(synth_bundle_dir, tmp_path):
    """10,000 customers (new to the model: cold-start offers) in batches, from 8 threads at once
    and each batch twice: the share held back is the configured one within sampling error, every
    repeat answers the same, and the events store holds every held-back offer exactly once."""
    app, keys = _app(synth_bundle_dir, tmp_path, control=ControlGroups(share=0.2, salt="svc"), max_batch=500)
    day, read = _during(app), {"X-API-Key": keys["read"]}
    ids = [f"new-{i:05d}" for i in range(10_000)]
    batches = [ids[i : i + 500] for i in range(0, len(ids), 500)] * 2

    def ask(batch):
        r = app.test_client().post("/v1/offers/batch", json={"customer_ids": batch, "k": 3, "as_of": day}, headers=read)
        assert r.status_code == 200, r.json
        return r.json["results"]

    with ThreadPoolExecutor(8) as pool:
        results = [x for part in pool.map(ask, batches) for x in part]
    answers: dict = {}
    for res in results:  # the same answer each time a customer is asked
        assert answers.setdefault(res["customer_id"], res) == res
    held = {(c, o) for c, res in answers.items() for o in res["held_out"]}
    sent = sum(len(res["offers"]) for res in answers.values())
    share = len(held) / (len(held) + sent)
    assert abs(share - 0.2) < 4 * np.sqrt(0.2 * 0.8 / (len(held) + sent))
    control = ControlGroups(share=0.2, salt="svc")
    assert all(control.held_out(c, o) for c, o in held)
    stored = read_event_store(f"sqlite:///{tmp_path / 'events.db'}")
    assert len(stored) == stored["event_id"].nunique() == len(held)
    assert set(zip(stored["customer_id"], stored["offer_id"])) == held
    assert (stored["event"] == "held_out").all() and (stored["propensity"] == 0.2).all()


def test_no_control_share_holds_back_nothing(synth_bundle_dir, tmp_path):
    app, keys = _app(synth_bundle_dir, tmp_path, control=ControlGroups(share=0.0))
    r = app.test_client().get(f"/v1/customers/new-1/offers?as_of={_during(app)}", headers={"X-API-Key": keys["read"]})
    assert r.json["held_out"] == [] and r.json["offers"]


@pytest.mark.slow
def test_every_worker_holds_back_the_same_customers(synth_bundle_dir, tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    key = keys.create("read")
    port = free_port()
    env = child_env(
        RECSYS_MODEL_URI=str(synth_bundle_dir),
        RECSYS_API_KEYS_FILE=str(tmp_path / "keys.json"),
        RECSYS_EVENTS_URL=f"sqlite:///{tmp_path / 'events.db'}",
        RECSYS_CONTROL_SHARE="0.25",
        RECSYS_ASSIGNMENT_SALT="workers",
    )
    proc = subprocess.Popen(
        [str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        from serving.probe import wait_http

        wait_http(f"{base}/readyz", proc)
        day = str(
            (pd.read_parquet(synth_bundle_dir / "catalog.parquet")["start_date"].max() + pd.Timedelta(days=1)).date()
        )

        def get(c):
            req = urllib.request.Request(f"{base}/v1/customers/{c}/offers?k=3&as_of={day}", headers={"X-API-Key": key})
            with urllib.request.urlopen(req, timeout=30) as r:
                return c, json.loads(r.read())["held_out"]

        ids = [f"w-{i}" for i in range(150)] * 4  # each customer asked four times, workers alternate
        with ThreadPoolExecutor(8) as pool:
            seen = list(pool.map(get, ids))
        by_customer: dict = {}
        for c, held in seen:
            assert by_customer.setdefault(c, held) == held
        time.sleep(0.5)
        stored = read_event_store(f"sqlite:///{tmp_path / 'events.db'}")
        expected = {(c, o) for c, held in by_customer.items() for o in held}
        assert len(expected) > 20
        assert len(stored) == len(expected) and set(zip(stored["customer_id"], stored["offer_id"])) == expected
    finally:
        stop_group(proc)


@pytest.mark.slow
def test_training_measures_lift_and_the_service_answers_it(lift_bundle, synth_experiments, tmp_path):
    result, path = lift_bundle
    truth = synth_experiments[1]["experiment_effects"]
    lift = result.bundle.lift
    offers = lift[(lift["level"] == "offer") & (lift["control"] > 0)].set_index("group")
    assert set(offers.index) == set(truth["offer_id"])
    for offer, planted in truth.groupby("offer_id")["effect_total_spend"].mean().items():
        assert offers.loc[offer, "total_spend_lift_low"] <= planted <= offers.loc[offer, "total_spend_lift_high"]
    assert any(k.startswith("lift_offer_OX001_incremental_profit") for k in result.metrics)
    uncontrolled = lift[lift["control"] == 0]
    assert len(uncontrolled) and uncontrolled["verdict"].str.startswith("no control group").all()

    app, keys = _app(path, tmp_path)
    client, read = app.test_client(), {"X-API-Key": keys["read"]}
    assert client.get("/v1/lift").status_code == 401
    all_rows = client.get("/v1/lift", headers=read).json
    assert len(all_rows["rows"]) == len(lift) and all_rows["note"] == ""
    one = client.get("/v1/lift?offer_id=OX002", headers=read).json["rows"]
    assert len(one) == 1 and one[0]["group"] == "OX002" and one[0]["level"] == "offer"
    assert one[0]["incremental_profit"] == pytest.approx(offers.loc["OX002", "incremental_profit"])
    nothing = client.get("/v1/lift?campaign_id=nope", headers=read).json
    assert nothing["rows"] == [] and nothing["note"] == "no offer or campaign matches the filter"
    from tests.test_answers import assert_documented

    spec = client.get("/openapi.json").json
    assert_documented(spec, "/v1/lift", "get", client.get("/v1/lift?offer_id=OX001", headers=read))


def test_a_model_without_control_groups_says_lift_cannot_be_measured(synth_bundle_dir, tmp_path):
    app, keys = _app(synth_bundle_dir, tmp_path)
    body = app.test_client().get("/v1/lift", headers={"X-API-Key": keys["read"]}).json
    assert body["rows"] == [] and "no randomised control group" in body["note"]
