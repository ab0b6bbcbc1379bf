"""`recsys serve` runs gunicorn for real on loopback; `recsys keys create` prints a key once."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from serving.probe import wait_http
from tests.procs import child_env, free_port, stop

BIN = Path(sys.executable).parent


def _get(url, key=None, timeout=10):
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_serve_under_gunicorn(synth_bundle_dir, tmp_path):
    keys = tmp_path / "keys.json"
    made = subprocess.run(
        [str(BIN / "recsys"), "keys", "create", "--role", "read", "--file", str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0
    key = made.stdout.strip()
    assert key.startswith("rk_") and key not in keys.read_text() and "not shown again" in made.stderr
    port = free_port()
    env = child_env(
        RECSYS_MODEL_URI=str(synth_bundle_dir),
        RECSYS_API_KEYS_FILE=str(keys),
        RECSYS_EVENTS_URL=f"sqlite:///{tmp_path / 'events.db'}",
    )
    proc = subprocess.Popen(
        [str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            try:
                status, body = _get(f"{base}/readyz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not become ready"
            time.sleep(0.5)
        status, body = _get(f"{base}/v1/customers/C000001/churn-risk", key)
        assert status == 200 and 0 <= body["churn_probability"] <= 1
        status, body = _get(f"{base}/v1/customers/C000001/offers?k=2", key)
        assert status == 200 and body["customer_id"] == "C000001"
        status, body = _get(f"{base}/v1/segments")
        assert status == 401 and body["error"]["code"] == "unauthorized"
        # slow clients: connections sending partial headers hold a thread each, not the workers
        slow = []
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            slow.append(sock)
        t = time.monotonic()
        for _ in range(5):
            status, _ = _get(f"{base}/healthz", timeout=5)
            assert status == 200
        assert time.monotonic() - t < 5
        long_id = "x" * 5000  # a long request line still gets the service's JSON, not gunicorn's page
        status, body = _get(f"{base}/v1/customers/{long_id}/offers", key)
        assert status == 400 and body["error"]["code"] == "bad_parameter"
        for sock in slow:
            sock.close()
        # a body the service does not read (refused before reading, or a method that takes none)
        # must not be taken for the next request on the kept-alive connection
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for method, path in (("TRACE", "/v1/events"), ("POST", "/v1/events"), ("POST", "/v1/offers/batch")):
            conn.request(method, path, body='{"events": [1]}', headers={"Content-Type": "application/json"})
            first = conn.getresponse()
            first.read()
            assert first.status in (401, 405)
            conn.request("GET", "/healthz")
            then = conn.getresponse()
            assert then.status == 200 and json.loads(then.read())["status"] == "ok"
        conn.close()
        # graceful reload of the workers with SIGHUP, then still serving
        proc.send_signal(signal.SIGHUP)
        time.sleep(2)
        status, _ = _get(f"{base}/readyz", timeout=10)
        assert status == 200
    finally:
        stop(proc)


def _metric_lines(base: str, name: str) -> list[str]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        return [x for x in r.read().decode().splitlines() if x.startswith(name)]


@pytest.mark.slow
def test_workers_share_metrics_and_follow_a_reload(synth_bundle_dir, tmp_path):
    """Two workers: /metrics counts every worker's requests whichever answers the scrape, and a
    reload asked of one worker reaches the other."""
    keys = tmp_path / "keys.json"
    made = subprocess.run(
        [str(BIN / "recsys"), "keys", "create", "--role", "admin", "--file", str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    key = made.stdout.strip()
    port = free_port()
    env = child_env(
        RECSYS_MODEL_URI=str(synth_bundle_dir),
        RECSYS_API_KEYS_FILE=str(keys),
        RECSYS_EVENTS_URL=f"sqlite:///{tmp_path / 'events.db'}",
        RECSYS_RUN_DIR=str(tmp_path / "run"),
    )
    proc = subprocess.Popen(
        [str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", proc)
        for i in range(30):
            status, _ = _get(f"{base}/v1/customers/C{i + 1:06d}/offers?k=2", key)
            assert status == 200
        series = 'recsys_requests_total{endpoint="/v1/customers/<customer_id>/offers",method="GET",status="200"}'
        for _ in range(6):  # whichever worker answers, the sum over both
            assert _metric_lines(base, series) == [f"{series} 30.0"]
        deadline = time.monotonic() + 60  # gunicorn spawns its workers a moment apart
        while len(loaded := _metric_lines(base, "recsys_model_loaded_at_seconds{")) < 2:
            assert time.monotonic() < deadline, loaded
            time.sleep(0.2)
        assert len(loaded) == 2  # one series per worker, none for the master
        before = max(float(x.split()[-1]) for x in loaded)

        req = urllib.request.Request(f"{base}/v1/admin/reload", method="POST", headers={"X-API-Key": key})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200
        deadline = time.monotonic() + 60
        while True:
            loaded = _metric_lines(base, "recsys_model_loaded_at_seconds{")
            if len(loaded) == 2 and all(float(x.split()[-1]) > before for x in loaded):
                break
            assert time.monotonic() < deadline, loaded
            time.sleep(0.5)
    finally:
        stop(proc)
