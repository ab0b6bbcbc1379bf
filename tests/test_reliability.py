"""The service and its model registry: a verified local copy to start from when the registry
is away, checksums on every load, and every worker on the version it was last told to serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from serving import create_app
from serving.auth import KeyStore
from serving.probe import wait_http
from tests.conftest import register_bundle
from tests.procs import child_env, free_port, stop

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def registry(synth_bundle_dir, tmp_path_factory):
    """A registry with two versions of the synthetic bundle, v1 champion."""
    tmp = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    v1 = register_bundle(uri, synth_bundle_dir)
    v2 = register_bundle(uri, synth_bundle_dir, champion=False)
    return uri, v1, v2, tmp


def _config(tmp, tracking, copy, **more):
    keys = KeyStore(tmp / "keys.json")
    key = keys.create("admin", "test")
    return {
        "model_uri": "models:/loyalty-offers@champion",
        "tracking_uri": tracking,
        "api_keys_file": str(tmp / "keys.json"),
        "events_url": f"sqlite:///{tmp / 'events.db'}",
        "local_copy": str(copy),
        "registry_timeout": 5.0,
        **more,
    }, key


def test_registry_down_at_start_serves_the_verified_local_copy(registry, tmp_path):
    uri, v1, _, _ = registry
    copy = tmp_path / "served"
    config, key = _config(tmp_path, uri, copy)
    first = create_app(config)
    assert first.extensions["recsys"].model.current.source == "registry"
    info = first.test_client().get("/v1/model", headers={"X-API-Key": key}).json
    assert info["quality_gate"] == "passed" and info["horizon_days"] == 30 and info["data_fingerprint"]
    assert info["as_of"] and info["data_last_date"] and info["age_days"] >= 0 and info["source"] == "registry"
    assert json.loads((copy / "served.json").read_text())["version"] == v1
    # the registry unreachable: a port nothing listens on
    t = time.perf_counter()
    app = create_app({**config, "tracking_uri": "http://127.0.0.1:9"})
    took = time.perf_counter() - t
    assert took < 30  # bounded: the registry timeout, then the copy
    c = app.test_client()
    ready = c.get("/readyz").json
    assert ready["status"] == "degraded" and ready["model_version"] == v1 and ready["model_source"] == "local copy"
    assert ready["dependencies"]["model_registry"]["ok"] is False
    info = c.get("/v1/model", headers={"X-API-Key": key}).json
    assert info["version"] == v1 and info["source"] == "local copy"
    offers = c.get("/v1/customers/C000001/offers?as_of=2024-06-01", headers={"X-API-Key": key})
    assert offers.status_code == 200 and offers.json["model_version"] == v1


def test_a_missing_tracking_database_is_not_created(registry, tmp_path):
    uri, v1, _, _ = registry
    copy = tmp_path / "served"
    config, _ = _config(tmp_path, uri, copy)
    create_app(config)  # keeps the copy
    missing = tmp_path / "nowhere.db"
    app = create_app({**config, "tracking_uri": f"sqlite:///{missing}"})
    assert not missing.exists()
    assert app.extensions["recsys"].model.current.source == "local copy"
    assert app.extensions["recsys"].model.current.version == v1


def test_a_damaged_copy_is_refused_naming_the_file(registry, tmp_path):
    uri, _, _, _ = registry
    copy = tmp_path / "served"
    config, _ = _config(tmp_path, uri, copy)
    create_app(config)
    target = copy / "bundle" / "customers.parquet"
    target.write_bytes(target.read_bytes()[:-10])  # truncated
    app = create_app({**config, "tracking_uri": "http://127.0.0.1:9"})
    holder = app.extensions["recsys"].model
    assert not holder.ready and "customers.parquet" in holder.last_error
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and "customers.parquet" in r.json["error"]["message"]


def _versions(base, key, n=40):
    seen = []
    for i in range(n):
        req = urllib.request.Request(
            f"{base}/v1/customers/C{i % 50 + 1:06d}/offers?k=1&as_of=2024-06-01", headers={"X-API-Key": key}
        )
        with urllib.request.urlopen(req, timeout=20) as r:
            seen.append(json.loads(r.read())["model_version"])
    return seen


def _worker_pids(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_workers(master: int, n: int, old: set[int] = frozenset(), timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in _worker_pids(master) if p not in old]
        if len(_worker_pids(master)) == n and (not old or pids):
            return pids
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_every_worker_serves_the_version_it_was_last_told_to(registry, tmp_path):
    uri, v1, v2, _ = registry
    keys = KeyStore(tmp_path / "keys.json")
    key = keys.create("admin", "test")
    port = free_port()
    env = child_env(
        MLFLOW_TRACKING_URI=uri,
        RECSYS_API_KEYS_FILE=str(tmp_path / "keys.json"),
        RECSYS_EVENTS_URL=f"sqlite:///{tmp_path / 'events.db'}",
        RECSYS_RUN_DIR=str(tmp_path / "run"),
        RECSYS_LOCAL_COPY=str(tmp_path / "served"),
    )
    proc = subprocess.Popen(
        [str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    client = MlflowClient(uri)
    try:
        wait_http(f"{base}/readyz", proc)
        workers = _wait_workers(proc.pid, 2)
        assert set(_versions(base, key)) == {v1}
        # promoted without a reload: nothing changes, even for a worker forked after it
        client.set_registered_model_alias("loyalty-offers", "champion", v2)
        os.kill(workers[0], signal.SIGKILL)
        _wait_workers(proc.pid, 2, set(workers))
        assert set(_versions(base, key)) == {v1}
        # a reload: every worker switches, once, and a worker forked afterwards serves v2 too
        req = urllib.request.Request(f"{base}/v1/admin/reload", method="POST", headers={"X-API-Key": key})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.loads(r.read())["version"] == v2
        assert set(_versions(base, key)) == {v2}
        workers = _worker_pids(proc.pid)
        os.kill(workers[0], signal.SIGKILL)
        _wait_workers(proc.pid, 2, set(workers))
        assert set(_versions(base, key)) == {v2}
        os.kill(proc.pid, signal.SIGHUP)  # graceful restart of every worker: still v2
        time.sleep(3)
        _wait_workers(proc.pid, 2)
        assert set(_versions(base, key)) == {v2}
    finally:
        client.set_registered_model_alias("loyalty-offers", "champion", v1)
        stop(proc)


def test_a_copy_of_another_model_is_not_served(registry, tmp_path):
    uri, _, _, _ = registry
    copy = tmp_path / "served"
    config, _ = _config(tmp_path, uri, copy)
    create_app(config)
    other = create_app({**config, "tracking_uri": "http://127.0.0.1:9", "model_uri": "models:/another-line@champion"})
    holder = other.extensions["recsys"].model
    assert not holder.ready and "is of models:/loyalty-offers@champion" in holder.last_error
