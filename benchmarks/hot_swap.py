"""Hot swap under load: 60 s of GET offers on two gunicorn workers while a second version is
promoted and reloaded, then rolled back and reloaded, a worker is killed (kill -9) and every
worker restarted (HUP). Prints requests, failures, the model version each answer came from,
how often consecutive answers switched version, and the start-up time with the registry
unreachable (from the verified local copy).

Target (issue): 0 failed requests; every answer from one whole model; after each reload the
answers switch once. The load client sends a request again once when it meets a keep-alive
connection the server closed (a killed or restarted worker), as HTTP clients do for GET; those
are counted and printed beside the failures.

    python benchmarks/hot_swap.py [--seconds 60] [--threads 6]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _registry(folder: Path) -> tuple[str, str, str]:
    """Two versions trained on synthetic data (seeds 1 and 2): (tracking URI, v1, v2), v1 champion."""
    from recsys.data.sources import write_tables
    from recsys.data.synthetic import generate
    from registry.store import set_champion
    from training.config import TrainConfig
    from training.pipeline import train

    tables, _ = generate(customers=2000, products=300, seed=3)
    write_tables(tables, folder / "data")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    small = {"horizon_days": 30, "min_campaign_offers": 5, "churn_snapshots": 10, "experiment": "hot-swap"}
    v = [train(TrainConfig(data=str(folder / "data"), seed=s, promote=False, **small)).version for s in (1, 2)]
    from registry.store import client

    set_champion(client(), "loyalty-offers", v[0])
    return uri, v[0], v[1]


def _load(base: str, key: str, ids: list, stop: threading.Event, out: list, lock: threading.Lock) -> None:
    """GET offers in a loop on one keep-alive connection. A request that meets a connection the
    server closed (a worker killed or restarted between two requests) is sent once more on a
    new connection, as HTTP clients do for idempotent requests: counted as retried; a request
    that fails again, or answers other than 200, is a failure."""
    host, port = base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.is_set():
        path = f"/v1/customers/{random.choice(ids)}/offers?k=3&as_of=2024-06-01"
        row = None
        for attempt in (0, 1):
            try:
                conn.request("GET", path, headers={"X-API-Key": key})
                r = conn.getresponse()
                body = r.read()
                version = json.loads(body).get("model_version") if r.status == 200 else None
                row = (time.monotonic(), r.status, version, attempt)
                break
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                row = (time.monotonic(), type(exc).__name__, None, attempt)
        with lock:
            out.append(row)


def _workers(master: int) -> list[int]:
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _reload(base: str, key: str) -> str:
    req = urllib.request.Request(f"{base}/v1/admin/reload", method="POST", headers={"X-API-Key": key})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["version"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=6)
    args = parser.parse_args()
    from serving.auth import KeyStore

    folder = Path(tempfile.mkdtemp(prefix="hot-swap-"))
    print("training two versions on synthetic data ...", flush=True)
    uri, v1, v2 = _registry(folder)
    key = KeyStore(folder / "keys.json").create("admin", "bench")
    base = f"http://127.0.0.1:{_free_port()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_RUN")},
        "MLFLOW_TRACKING_URI": uri,
        "RECSYS_API_KEYS_FILE": str(folder / "keys.json"),
        "RECSYS_EVENTS_URL": f"sqlite:///{folder / 'events.db'}",
        "RECSYS_LOCAL_COPY": str(folder / "served"),
        "RECSYS_ANSWER_CACHE": "0",
    }
    serve = [str(BIN / "recsys"), "serve", "--port", base.rsplit(":", 1)[1], "--workers", "2"]
    rows, marks, t0 = _under_load(args, folder, env, serve, base, key, uri, (v1, v2))
    _report(rows, marks, t0, args.seconds)
    _start_without_registry(folder, env, serve, base)


def _under_load(args, folder, env, serve, base, key, uri, versions):
    from mlflow.tracking import MlflowClient

    from serving.probe import wait_http

    v1, v2 = versions
    proc = subprocess.Popen(serve, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"{base}/readyz", proc, timeout=120)
    ids = [f"C{i:06d}" for i in range(1, 2001)]
    rows: list = []
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=_load, args=(base, key, ids, stop, rows, lock)) for _ in range(args.threads)]
    for t in threads:
        t.start()
    client, t0, marks = MlflowClient(uri), time.monotonic(), []

    def champion(version):
        client.set_registered_model_alias("loyalty-offers", "champion", version)
        _reload(base, key)

    plan = [
        (0.15, "promote v2 and reload", lambda: champion(v2)),
        (0.40, "roll back to v1 and reload", lambda: champion(v1)),
        (0.60, "kill -9 a worker", lambda: os.kill(_workers(proc.pid)[0], signal.SIGKILL)),
        (0.80, "HUP: restart every worker", lambda: os.kill(proc.pid, signal.SIGHUP)),
    ]
    for at, what, act in plan:
        time.sleep(max(0.0, t0 + at * args.seconds - time.monotonic()))
        start = time.monotonic() - t0
        act()
        marks.append((start, what, time.monotonic() - t0))
    time.sleep(max(0.0, t0 + args.seconds - time.monotonic()))
    stop.set()
    for t in threads:
        t.join()
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    return rows, marks, t0


def _report(rows, marks, t0, seconds) -> None:
    rows.sort()
    failed = [r for r in rows if r[1] != 200]
    versions = Counter(r[2] for r in rows if r[1] == 200)
    seq = [r[2] for r in rows if r[1] == 200]
    flips = sum(1 for a, b in itertools.pairwise(seq) if a != b)
    print(f"\n{len(rows):,} requests in {seconds:g} s ({len(rows) / seconds:,.0f}/s), {len(failed)} failed")
    print("answers per model version: " + ", ".join(f"v{k}: {n:,}" for k, n in sorted(versions.items())))
    print(f"version switches between consecutive answers: {flips} (two reloads: 2 means each switched once)")
    for start, what, end in marks:
        print(f"  {start:5.1f} s - {end:5.1f} s  {what}")
    for (start, what, _), (nxt, _, _) in zip(marks, [*marks[1:], (seconds, "", seconds)]):
        window = [r[2] for r in rows if start <= r[0] - t0 < nxt and r[1] == 200]
        print(f"  after '{what}': " + ", ".join(f"v{k} {n:,}" for k, n in sorted(Counter(window).items())))
    retried = [r for r in rows if r[3] == 1]
    print(f"requests sent again on a new connection (the server had closed the old one): {len(retried)}")
    if failed:
        print("failures:", Counter(str(r[1]) for r in failed).most_common(5))
        print("  at (s):", ", ".join(f"{r[0] - t0:.1f}" for r in failed[:20]))


def _start_without_registry(folder, env, serve, base) -> None:
    """Start-up with the registry unreachable: from the verified local copy."""
    from serving.probe import wait_http

    env_down = {**env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "RECSYS_REGISTRY_TIMEOUT": "5"}
    t = time.monotonic()
    proc = subprocess.Popen(serve, cwd=folder, env=env_down, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"{base}/readyz", proc, timeout=120)
        took = time.monotonic() - t
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as r:
            ready = json.loads(r.read())
        print(
            f"\nregistry unreachable at start: ready in {took:.1f} s from the {ready['model_source']} of "
            f"v{ready['model_version']} (status {ready['status']}, registry timeout 5 s)"
        )
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
