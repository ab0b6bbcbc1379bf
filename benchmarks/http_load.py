"""Load from client processes on loopback, for the serving benchmarks: a timed load of random
requests (``load``), every request once (``send``, as an email send asks for each customer
once), and percentiles pooled over several loads."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time

import numpy as np


def free_port() -> int:
    import socket  # a port the system says is free

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(host: str, port: int, request: tuple) -> float:
    """One request on a new connection (as a marketing tool's client makes it); its seconds."""
    import http.client

    method, path, body, headers = request
    t = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{path}: {resp.status}")
    return time.perf_counter() - t


def _threads(threads: int, work) -> list[float]:
    """``work(i)`` in ``threads`` threads, each returning its latencies; all of them."""
    import threading

    found: list[list[float]] = [[] for _ in range(threads)]
    ts = [threading.Thread(target=lambda i=i: found[i].extend(work(i))) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return [x for part in found for x in part]


def _client(args) -> list[float]:
    """Random requests for ``seconds`` from ``threads`` threads."""
    host, port, requests, seconds, threads = args
    stop_at = time.monotonic() + seconds

    def work(i):
        rnd = random.Random(os.getpid() * 100 + i)
        mine = []
        while time.monotonic() < stop_at:
            mine.append(_request(host, port, rnd.choice(requests)))
        return mine

    return _threads(threads, work)


def _send_client(args) -> list[float]:
    """Each of ``requests`` once, from ``threads`` threads taking them in turn."""
    import queue

    host, port, requests, threads = args
    todo: queue.Queue = queue.Queue()
    for r in requests:
        todo.put(r)

    def work(_):
        mine = []
        while True:
            try:
                request = todo.get_nowait()
            except queue.Empty:
                return mine
            mine.append(_request(host, port, request))

    return _threads(threads, work)


def send(port: int, requests: list, processes: int = 2, threads: int = 8) -> dict:
    """An email send: every request once (each customer asked for once), from the same clients
    as ``load``; requests per second over the whole send."""
    parts = [requests[i::processes] for i in range(processes)]
    with mp.Pool(processes) as pool:
        t = time.perf_counter()
        done = pool.map(_send_client, [("127.0.0.1", port, part, threads) for part in parts])
        wall = time.perf_counter() - t
    return _figures(np.concatenate([np.asarray(d) for d in done]), wall)


def load(port: int, requests: list, seconds: float, processes: int = 2, threads: int = 8) -> dict:
    with mp.Pool(processes) as pool:
        t = time.perf_counter()
        parts = pool.map(_client, [("127.0.0.1", port, requests, seconds, threads)] * processes)
        wall = time.perf_counter() - t
    lat = np.concatenate([np.asarray(p) for p in parts])
    return {**_figures(lat, seconds), "wall": wall, "latencies": lat, "seconds": seconds}


def pooled(runs: list[dict]) -> dict:
    """Throughput over all runs, latency percentiles over all their requests."""
    return _figures(np.concatenate([r["latencies"] for r in runs]), sum(r["seconds"] for r in runs))


def _figures(lat: np.ndarray, seconds: float) -> dict:
    """Requests per second over ``seconds``, the latencies' median and 99th percentile in ms."""
    return {
        "rps": len(lat) / seconds,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "requests": len(lat),
    }
