"""`recsys serve` runs gunicorn for real on loopback; `recsys keys create` prints a key once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

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
    made = subprocess.run([str(BIN / "recsys"), "keys", "create", "--role", "read", "--file", str(keys)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0
    key = made.stdout.strip()
    assert key.startswith("rk_") and key not in keys.read_text() and "not shown again" in made.stderr
    port = free_port()
    env = child_env(RECSYS_MODEL_URI=str(synth_bundle_dir), RECSYS_API_KEYS_FILE=str(keys),
                    RECSYS_EVENTS_URL=f"sqlite:///{tmp_path / 'events.db'}")
    proc = subprocess.Popen([str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        # graceful reload of the workers with SIGHUP, then still serving
        proc.send_signal(signal.SIGHUP)
        time.sleep(2)
        status, _ = _get(f"{base}/readyz", timeout=10)
        assert status == 200
    finally:
        stop(proc)
