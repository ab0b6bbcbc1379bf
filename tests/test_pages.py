"""The analyst page in a real browser: Debian's Chromium driven by Playwright against the app
served by gunicorn on loopback with a model trained on synthetic data. Log in, filter the
at-risk list and check it against the API, open a customer with the keyboard, download the CSV
and compare it with the API's, look at segments, lift and the model, log out and be refused."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from serving.auth import KeyStore
from tests.procs import child_env, free_port, stop_group

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (make test installs Debian's)"),
]


@pytest.fixture(scope="module")
def server(lift_bundle, tmp_path_factory):
    _, bundle = lift_bundle
    tmp = tmp_path_factory.mktemp("pages")
    store = KeyStore(tmp / "keys.json")
    keys = {"read": store.create("read", "analyst"), "events": store.create("events", "tool")}
    port = free_port()
    env = child_env(
        RECSYS_MODEL_URI=str(bundle),
        RECSYS_API_KEYS_FILE=str(tmp / "keys.json"),
        RECSYS_EVENTS_URL=f"sqlite:///{tmp / 'events.db'}",
    )
    proc = subprocess.Popen(
        [str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    from serving.probe import wait_http

    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/readyz", proc)
    yield base, keys, tmp
    stop_group(proc)


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def api(base: str, key: str, path: str):
    req = urllib.request.Request(base + path, headers={"X-API-Key": key})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body.decode()


def login(page, base: str, key: str, then: str = "/app/at-risk") -> None:
    page.goto(base + then)
    assert "/app/login" in page.url  # no page without a key
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}*")


def test_no_page_or_data_without_a_key(page, server):
    base, _keys, _ = server
    for path in ("/app/at-risk", "/app/segments", "/app/at-risk.csv", "/app/charts/segments.svg"):
        response = page.goto(base + path)
        assert "/app/login" in page.url and response.ok, path
    page.fill("#key", "rk_not-a-key")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "That key is not known."
    assert page.locator("h1").inner_text() == "Log in"


def test_the_filtered_list_is_the_apis_and_the_csv_is_too(page, server, tmp_path):
    base, keys, _ = server
    login(page, base, keys["read"])
    segment = max(api(base, keys["read"], "/v1/segments")["segments"], key=lambda s: s["high_risk_share"])["name"]
    page.select_option("select[name=band]", "high")
    page.select_option("select[name=segment]", segment)
    page.select_option("select[name=sort]", "churn_probability")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**band=high**")
    shown = page.locator("#at-risk tbody tr").evaluate_all("rows => rows.map(r => r.dataset.customer)")
    query = f"band=high&segment={urllib.request.quote(segment)}&sort=churn_probability&order=desc"
    want = api(base, keys["read"], f"/v1/churn/at-risk?{query}&limit=50")
    assert shown == [str(c["customer_id"]) for c in want["customers"]] and shown
    assert page.locator("#summary").inner_text().startswith(f"{want['total']:,} customers match")
    first = page.locator("#at-risk tbody tr").first
    assert first.locator("td").nth(0).inner_text() == f"{want['customers'][0]['churn_probability'] * 100:.1f}%"
    with page.expect_download() as done:
        page.click("#download")
    downloaded = Path(done.value.path()).read_bytes().decode()
    assert downloaded == api(base, keys["read"], f"/v1/churn/at-risk?{query}&format=csv")
    rows = list(csv.DictReader(io.StringIO(downloaded)))
    assert len(rows) == want["total"] and all(r["risk_band"] == "high" and r["segment"] == segment for r in rows)


def test_a_customer_opens_from_the_list_with_the_keyboard(page, server):
    base, keys, _ = server
    login(page, base, keys["read"])
    link = page.locator("#at-risk tbody tr th a").first
    cid = link.inner_text()
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/customers/{cid}")
    assert page.locator("h1").inner_text() == f"Customer {cid}"
    risk = api(base, keys["read"], f"/v1/customers/{cid}/churn-risk")
    assert page.locator("#churn-probability").inner_text().startswith(f"{risk['churn_probability'] * 100:.1f}%")
    assert page.locator("#reasons li").all_inner_texts() == risk["reasons"]
    chart = page.locator("img[alt^='Weekly spend']")
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("#offers tbody tr").count() >= 1


def test_segments_lift_and_model_pages(page, server):
    base, keys, _ = server
    login(page, base, keys["read"], then="/app/segments")
    assert page.locator("h2").all_inner_texts() == ["RFM segments", "Behavioural clusters"]
    for img in page.locator("main img").all():
        assert img.evaluate("img => img.complete && img.naturalWidth > 0")
    name = page.locator("#segments tbody th a").first.inner_text()
    page.locator("#segments tbody th a").first.click()
    page.wait_for_url("**/app/at-risk?**")
    segments = page.locator("#at-risk tbody tr td:nth-of-type(5)").all_inner_texts()
    assert segments and set(segments) == {name}
    page.goto(base + "/app/lift")
    verdicts = page.locator("#lift tbody tr td:last-child").all_inner_texts()
    measured = [v for v in verdicts if not v.startswith("no control group")]
    assert len(measured) == 4 and any(v.startswith("no control group") for v in verdicts)
    page.goto(base + "/app/model")
    assert page.locator("#metrics tbody tr").count() > 3 and "trained as of" in page.locator("footer").inner_text()


def test_logging_out_ends_the_session(page, server):
    base, keys, _ = server
    login(page, base, keys["read"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "recsys_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    page.click("form.logout button")
    page.wait_for_url("**/app/login")
    page.goto(base + "/app/at-risk")
    assert "/app/login" in page.url


def test_a_removed_key_ends_its_sessions(page, server):
    base, _keys, tmp = server
    extra = KeyStore(tmp / "keys.json").create("read", "temporary")
    login(page, base, extra)
    data = json.loads((tmp / "keys.json").read_text())
    data["keys"] = [k for k in data["keys"] if k["name"] != "temporary"]
    (tmp / "keys.json").write_text(json.dumps(data))
    os.utime(tmp / "keys.json")
    page.goto(base + "/app/at-risk")
    assert "/app/login" in page.url


def test_the_page_reads_on_a_narrow_window(page, server):
    base, keys, _ = server
    page.set_viewport_size({"width": 420, "height": 900})
    login(page, base, keys["read"])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420 + 1  # the table scrolls inside its box; the page itself does not
