"""Optional rate limits per API key (Flask-Limiter), answered with 429 and Retry-After.

``RECSYS_RATE_LIMIT`` (e.g. ``"50/second;2000/minute"``, the `limits` notation) turns them
on; each key has its own allowance, counted by its id (requests without a valid key are
refused before they count); the 429 is the service's JSON error, with Retry-After.

Storage: ``RECSYS_RATE_LIMIT_STORAGE``, by default ``memory://``, which counts in each worker
on its own, so with N workers a key gets up to N times the limit; give a shared store
(``redis://host:6379``, ``memcached://host:11211``) for one count across workers and machines.
Health, readiness, metrics and the docs are never limited.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter

from serving.web import state

UNLIMITED = ("/healthz", "/readyz", "/metrics", "/openapi.json")


def _key() -> str:
    key = state().keys.lookup(request.headers.get("X-API-Key"))
    return f"key:{key.key_id}" if key is not None else f"addr:{request.remote_addr}"


def init_limits(app: Flask, limit: str | None, storage: str) -> Limiter | None:
    if not limit:
        return None

    return Limiter(
        _key,
        app=app,
        default_limits=[limit],
        storage_uri=storage,
        headers_enabled=True,
        strategy="moving-window",
        default_limits_exempt_when=lambda: (
            request.path in UNLIMITED or request.path.startswith(("/docs", "/app/static"))
        ),
    )
