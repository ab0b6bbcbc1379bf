"""What one request costs inside the service's process: the WSGI app called directly (no HTTP,
no gunicorn, one thread), so the figures are the service's own work per request.

Prints milliseconds per request for ``/healthz``, GET offers of every customer once (a send: each
request ranks a customer not asked for before, and records its held_out events), GET offers of
500 customers again and again with the answer cache off (every request ranks) and on (every
request is answered from the cache). ``--profile`` adds cProfile's top functions of the ranked
requests.

    python benchmarks/request_cost.py [--model models:/loyalty-offers@champion] [--as-of 2018-01-01]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _app(model: str, tmp: Path, cache: int):
    from serving import create_app
    from serving.auth import KeyStore

    key = KeyStore(tmp / "keys.json").create("read", "request-cost")
    config = {
        "model_uri": model,
        "api_keys_file": str(tmp / "keys.json"),
        "events_url": f"sqlite:///{tmp / f'events-{cache}.db'}",
        "answer_cache": cache,
        "local_copy": None,
    }
    return create_app(config), key


def _caller(app, key: str):
    from werkzeug.test import EnvironBuilder

    def call(path: str) -> None:
        status = []
        environ = EnvironBuilder(path=path, headers={"X-API-Key": key}).get_environ()
        body = b"".join(app.wsgi_app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise SystemExit(f"{path}: {status[0]} {body[:300]!r}")

    return call


def per_request(call, paths: list[str]) -> float:
    """Milliseconds per request over ``paths``."""
    t = time.perf_counter()
    for p in paths:
        call(p)
    return (time.perf_counter() - t) / len(paths) * 1e3


def main() -> None:
    from recsys import constants as C

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=C.CHAMPION_URI)
    parser.add_argument("--as-of", default="2018-01-01", help="date the offers must be valid on")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="request-cost-"))
    random.seed(0)
    for cache in (0, 50_000):
        app, key = _app(args.model, tmp, cache)
        call = _caller(app, key)
        ids = list(app.extensions["recsys"].model.current.bundle.customers.index)
        offers = [f"/v1/customers/{c}/offers?k=10&as_of={args.as_of}" for c in ids]
        repeat = [random.choice(offers[:500]) for _ in range(3000)]
        if cache == 0:
            print(f"GET /healthz:                          {per_request(call, ['/healthz'] * 3000):.3f} ms")
            print(f"GET offers, a send (each of {len(ids)} once): {per_request(call, offers):.3f} ms")
            print(f"GET offers, 500 customers, cache off:  {per_request(call, repeat):.3f} ms")
            if args.profile:
                profile = cProfile.Profile()
                profile.runcall(per_request, call, repeat[:2000])
                pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        else:
            per_request(call, repeat)  # the cache filled
            print(f"GET offers, 500 customers, cache on:   {per_request(call, repeat):.3f} ms")


if __name__ == "__main__":
    main()
