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


def _client(args) -> list[float]:
    import http.client
    import threading

    host, port, requests, seconds, threads = args
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def work(seed):
        rnd = random.Random(seed)
        mine = []
        while time.monotonic() < stop_at:
            method, path, body, headers = rnd.choice(requests)
            t = time.perf_counter()
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status}")
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    ts = [threading.Thread(target=work, args=(os.getpid() * 100 + i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return latencies


def _send_client(args) -> list[float]:
    """Each of ``requests`` once, from ``threads`` threads taking them in turn."""
    import http.client
    import queue
    import threading

    host, port, requests, threads = args
    todo: queue.Queue = queue.Queue()
    for r in requests:
        todo.put(r)
    latencies: list[float] = []
    lock = threading.Lock()

    def work():
        mine = []
        while True:
            try:
                method, path, body, headers = todo.get_nowait()
            except queue.Empty:
                break
            t = time.perf_counter()
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status}")
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return latencies


def send(port: int, requests: list, processes: int = 2, threads: int = 8) -> dict:
    """An email send: every request once (each customer asked for once), from the same clients
    as ``load``; requests per second over the whole send."""
    parts = [requests[i::processes] for i in range(processes)]
    with mp.Pool(processes) as pool:
        t = time.perf_counter()
        done = pool.map(_send_client, [("127.0.0.1", port, part, threads) for part in parts])
        wall = time.perf_counter() - t
    lat = np.concatenate([np.asarray(d) for d in done])
    return {
        "rps": len(lat) / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "requests": len(lat),
    }


def load(port: int, requests: list, seconds: float, processes: int = 2, threads: int = 8) -> dict:
    with mp.Pool(processes) as pool:
        t = time.perf_counter()
        parts = pool.map(_client, [("127.0.0.1", port, requests, seconds, threads)] * processes)
        wall = time.perf_counter() - t
    lat = np.concatenate([np.asarray(p) for p in parts])
    return {
        "rps": len(lat) / seconds,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "requests": len(lat),
        "wall": wall,
        "latencies": lat,
        "seconds": seconds,
    }


def pooled(runs: list[dict]) -> dict:
    """Throughput over all runs, latency percentiles over all their requests."""
    lat = np.concatenate([r["latencies"] for r in runs])
    seconds = sum(r["seconds"] for r in runs)
    return {
        "rps": len(lat) / seconds,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }
