"""The app factory: ``create_app(config=None)`` builds the service from the environment
(serving.config.Settings) with ``config`` overriding any setting. The model is loaded once here
and on ``POST /v1/admin/reload``; docs/api.md describes the endpoints.
"""

from __future__ import annotations

import logging
import os
import secrets

from flask import Flask, Response, jsonify, request, send_from_directory
from flask.sessions import SecureCookieSessionInterface
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from recsys.data.event_store import EventStore
from serving.answers import HeldOutRecorder
from serving.auth import KeyStore
from serving.config import Settings
from serving.dependencies import Dependency
from serving.holder import ModelHolder, ModelNotReady
from serving.limits import init_limits
from serving.metrics import Metrics
from serving.schemas import Error
from serving.web import ApiError, State, error_response, state

logger = logging.getLogger(__name__)

API_VERSION = "1.0"


class PageSessions(SecureCookieSessionInterface):
    """Sessions for the page (/app) only: the API authenticates every request by its key, so
    its requests neither read nor verify a session cookie (Flask's null session stands in)."""

    def open_session(self, app, request):
        if request.path.startswith("/app"):
            return super().open_session(app, request)
        return None


class ServiceApi(Api):
    """flask-smorest's Api, documenting the service's own error body on every operation."""

    ERROR_SCHEMA = Error


# A registry that does not answer must not hold the service for minutes: MLflow's HTTP client
# retries 7 times with back-off and waits 120 s per request by default.
MLFLOW_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def create_app(config: dict | None = None, *, load_model: bool = True) -> Flask:
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    settings = Settings.from_env().updated(config)
    app = Flask(__name__)
    app.session_interface = PageSessions()
    _configure(app, settings)
    metrics = Metrics()
    holder = ModelHolder(
        settings.model_uri,
        settings.tracking_uri,
        settings.catalog,
        settings.answer_cache,
        reload_file=settings.reload_file,
        on_loaded=lambda loaded: metrics.model_loaded(loaded.version, loaded.loaded_at, loaded.bundle.config),
        local_copy=settings.local_copy,
        registry_timeout=settings.registry_timeout,
    )
    events = EventStore(settings.events_url)
    events_health = Dependency("events store")
    app.extensions["recsys"] = State(
        settings,
        holder,
        events,
        KeyStore(settings.api_keys_file),
        metrics,
        HeldOutRecorder(events, events_health),
        events_health,
    )
    metrics.init_app(app)

    api = ServiceApi(app)
    from serving.blueprints import admin, churn, events, lift, offers, segments

    for blp in (offers.blp, churn.blp, segments.blp, events.blp, lift.blp, admin.blp):
        api.register_blueprint(blp)
    from serving.pages import blp as pages

    app.register_blueprint(pages)
    _health(app)
    _errors(app)
    _docs_assets(app)
    _security_headers(app)
    init_limits(app, settings.rate_limit, settings.rate_limit_storage)
    if load_model:
        try:
            holder.start()
        except Exception as exc:  # start anyway: /readyz says why, /v1 answers 503 (recsys serve exits)
            logger.error("model not loaded: %s", exc)
    return app


def _configure(app: Flask, settings: Settings) -> None:
    app.secret_key = settings.secret_key or secrets.token_hex(32)  # one per start unless set (gunicorn preloads)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="recsys_session",
    )
    app.json.sort_keys = False  # keep fields in their documented order, and skip the sorting cost
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="Loyalty offers",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI from the installed swagger-ui-bundle package (pinned in pyproject), never a CDN
        OPENAPI_SWAGGER_UI_URL="/docs/static/",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
            "security": [{"ApiKey": []}],
            "info": {"description": "Personalized offers and churn risk for loyalty and retention marketing."},
        },
    )


def _docs_assets(app: Flask) -> None:
    from swagger_ui_bundle import swagger_ui_path

    @app.get("/docs/static/<path:filename>")
    def swagger_ui_asset(filename: str):
        return send_from_directory(swagger_ui_path, filename, max_age=86400)


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
NO_STORE = (("Cache-Control", "no-store"),)  # per customer, and changed by every event
NOT_STORED = ("/readyz", "/healthz", "/metrics")


def _security_headers(app: Flask) -> None:
    @app.after_request
    def headers(response: Response) -> Response:
        # one pass over the response's headers; a header the view set stays as it set it
        h = response.headers
        present = {k.lower() for k, _ in h.items()}
        path = request.path
        wanted = SECURITY_HEADERS + NO_STORE if path.startswith("/v1/") or path in NOT_STORED else SECURITY_HEADERS
        h.extend([(k, v) for k, v in wanted if k.lower() not in present])
        _drain_body(app)
        return response


def _drain_body(app: Flask) -> None:
    """Read what is left of a request body the service did not read (an error before it, a
    method that takes none, such as TRACE): left in the connection, the server would take it for
    the start of the next request on a kept-alive connection, and that request would hang. A
    body over the size limit is not read; its connection is closed instead."""
    length = request.content_length or 0
    chunked = "chunked" in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not length and not chunked:
        return
    stream = request.environ.get("wsgi.input")
    if stream is None or length > app.config["MAX_CONTENT_LENGTH"]:
        return
    try:
        while stream.read(65536):
            pass
    except (OSError, ValueError):  # the client went away: nothing left to protect
        pass


def _health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        """Ready when a model is loaded (503 otherwise); "degraded" when it answers without a
        dependency (offers without the latest events' caps): still 200, so that a load
        balancer keeps sending traffic to a service that can answer."""
        st = state()
        holder = st.model
        if not holder.ready:
            return error_response(503, "not_ready", holder.last_error or "the model is not loaded yet")
        try:
            st.events.ping()
            st.events_health.succeeded()
        except Exception as exc:
            st.events_health.failed(exc)
        dependencies = {"events_store": st.events_health.as_dict(), **holder.dependencies()}
        ok = all(d["ok"] for d in dependencies.values())
        return jsonify(
            {
                "status": "ready" if ok else "degraded",
                "model_version": holder.current.version,
                "model_source": holder.current.source,
                "dependencies": dependencies,
            }
        )

    @app.get("/metrics")
    def metrics_view():
        body, content_type = state().metrics.exposition()
        return Response(body, content_type=content_type)


def _errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.retry_after)

    @app.errorhandler(ModelNotReady)
    def not_ready(exc):
        return error_response(503, "not_ready", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = (getattr(exc, "data", None) or {}).get("messages")
        if messages is not None:  # webargs validation: name every bad parameter, as a 400
            parts = []
            for location, fields in messages.items():
                for name, problems in fields.items() if isinstance(fields, dict) else [(location, fields)]:
                    parts.append(f"{name}: {_flatten(problems)}")
            return error_response(400, "bad_parameter", "; ".join(parts) or "invalid request")
        if exc.code == 429:  # serving.limits; Flask-Limiter adds Retry-After and the X-RateLimit headers
            return error_response(429, "rate_limited", f"rate limit exceeded for this API key: {exc.description}")
        if exc.code == 413:
            return error_response(413, "too_large", f"request body over {app.config['MAX_CONTENT_LENGTH']} bytes")
        codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        response = error_response(exc.code or 500, codes.get(exc.code, "error"), exc.description or exc.name)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # RFC 9110
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unhandled error")  # the trace goes to the log, never to the client
        return error_response(500, "internal_error", "internal error; the request was logged")


def _flatten(problems) -> str:
    if isinstance(problems, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in problems.items())
    if isinstance(problems, list):
        return " ".join(_flatten(p) for p in problems)
    return str(problems)
