"""Service settings: environment variables with defaults (docs/api.md lists them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from recsys import constants as C
from recsys.incrementality import ControlGroups


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


@dataclass
class Settings:
    model_uri: str = C.CHAMPION_URI  # RECSYS_MODEL_URI; a bundle directory works too
    tracking_uri: str = C.DEFAULT_TRACKING_URI  # MLFLOW_TRACKING_URI
    catalog: str | None = None  # RECSYS_CATALOG: directory or database URL with an offers table
    events_url: str = C.DEFAULT_EVENTS_URL  # RECSYS_EVENTS_URL
    api_keys_file: str = "api_keys.json"  # RECSYS_API_KEYS_FILE
    max_batch: int = 1000  # RECSYS_MAX_BATCH: customers per batch request
    max_body_bytes: int = 4_000_000  # RECSYS_MAX_BODY_BYTES: holds 10,000 events, the most one request may send
    answer_cache: int = 50_000  # RECSYS_ANSWER_CACHE: offer answers kept per worker (0: none)
    reload_file: str | None = None  # RECSYS_RELOAD_FILE: workers announce reloads here (gunicorn sets it)
    # RECSYS_CONTROL_SHARE, RECSYS_ASSIGNMENT_SALT, RECSYS_GLOBAL_CONTROL_SHARE, RECSYS_GLOBAL_CONTROL_SALT,
    # RECSYS_CONTROL_BACKFILL (recsys.incrementality.assignment.ENVIRONMENT)
    control: ControlGroups = field(default_factory=ControlGroups)
    secret_key: str | None = None  # RECSYS_SECRET_KEY: signs the page's session cookies (default: new per start)
    secure_cookies: bool = True  # RECSYS_SECURE_COOKIES: 0 sends the session cookie over plain HTTP too
    mlflow_ui: str | None = None  # RECSYS_MLFLOW_UI: the MLflow UI's address, for links to a model's run
    # RECSYS_LOCAL_COPY: where the last model loaded from the registry is kept, verified, to start
    # from when the registry is unreachable ('' for none)
    local_copy: str | None = ".recsys/served-model"
    registry_timeout: float = 20.0  # RECSYS_REGISTRY_TIMEOUT: seconds a model load may wait for the registry
    rate_limit: str | None = None  # RECSYS_RATE_LIMIT: per API key, e.g. "50/second;2000/minute" (serving.limits)
    rate_limit_storage: str = "memory://"  # RECSYS_RATE_LIMIT_STORAGE: redis://... for one count across workers

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            model_uri=_env("RECSYS_MODEL_URI", cls.model_uri),
            tracking_uri=_env("MLFLOW_TRACKING_URI", cls.tracking_uri),
            catalog=os.environ.get("RECSYS_CATALOG") or None,
            events_url=_env("RECSYS_EVENTS_URL", cls.events_url),
            api_keys_file=_env("RECSYS_API_KEYS_FILE", cls.api_keys_file),
            max_batch=int(_env("RECSYS_MAX_BATCH", str(cls.max_batch))),
            max_body_bytes=int(_env("RECSYS_MAX_BODY_BYTES", str(cls.max_body_bytes))),
            answer_cache=int(_env("RECSYS_ANSWER_CACHE", str(cls.answer_cache))),
            reload_file=os.environ.get("RECSYS_RELOAD_FILE") or None,
            control=ControlGroups.from_env(os.environ),
            secret_key=os.environ.get("RECSYS_SECRET_KEY") or None,
            secure_cookies=_env("RECSYS_SECURE_COOKIES", "1") not in ("0", "false", "no"),
            mlflow_ui=os.environ.get("RECSYS_MLFLOW_UI") or None,
            local_copy=os.environ.get("RECSYS_LOCAL_COPY", cls.local_copy) or None,
            registry_timeout=float(_env("RECSYS_REGISTRY_TIMEOUT", str(cls.registry_timeout))),
            rate_limit=os.environ.get("RECSYS_RATE_LIMIT") or None,
            rate_limit_storage=_env("RECSYS_RATE_LIMIT_STORAGE", cls.rate_limit_storage),
        )

    def updated(self, overrides: dict | None) -> Settings:
        if not overrides:
            return self
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return Settings(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **overrides})
