"""What every blueprint shares: the app's state, API-key checks, errors and cursors."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import ClassVar

import flask_smorest
from flask import current_app, jsonify, request
from marshmallow import RAISE, Schema
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from recsys.data.event_store import EventStore
from serving.auth import KeyStore, allowed
from serving.config import Settings
from serving.dependencies import Dependency
from serving.fields import check_id
from serving.holder import ModelHolder


@dataclass
class State:
    settings: Settings
    model: ModelHolder
    events: EventStore
    keys: KeyStore
    metrics: object
    held_out: object  # serving.answers.HeldOutRecorder: records held_out events in the events store
    events_health: Dependency  # whether the events store answers (serving.dependencies)


class QueryMemoParser(FlaskParser):
    """webargs' Flask parser that remembers what it parsed from each query string.

    Marketing tools send the same few query strings (k, channel, as_of) for thousands of
    customers: each is validated once per worker and its arguments reused. Parsing a query
    string with a schema is a pure function, so remembering it changes no answer; invalid
    query strings are not remembered and fail every time.
    """

    MAX_ENTRIES = 4096
    DEFAULT_VALIDATION_STATUS = 400  # bad parameters are a 400 in the service's error shape (and so documented)
    # A parameter the service does not know is refused by name: a misspelt "chanel" must not
    # silently answer for every channel.
    DEFAULT_UNKNOWN_BY_LOCATION: ClassVar[dict] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "json": RAISE,
    }

    def _raw_load_json(self, req):
        """The JSON body: a body of another content type is refused by name (415), invalid or
        too deeply nested JSON is a 400 that says where."""
        if not is_json_request(req):
            if req.get_data(cache=True) or req.method in ("POST", "PUT", "PATCH"):
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    f"Content-Type {req.mimetype or '(none)'} is not accepted: send the body as application/json",
                )
            return core.missing
        try:
            return json.loads(req.get_data(cache=True))
        except UnicodeDecodeError as exc:
            raise ApiError(400, "bad_json", f"the body is not UTF-8 (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise ApiError(
                400, "bad_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise ApiError(400, "bad_json", "the body nests arrays or objects too deeply") from None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._memo: dict = {}

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        if location != "query" or not isinstance(argmap, Schema) or kwargs.get("validate") is not None:
            return super().parse(argmap, req, location=location, **kwargs)
        key = (id(argmap), (req if req is not None else request).query_string)
        found = self._memo.get(key)
        if found is None:
            found = super().parse(argmap, req, location=location, **kwargs)
            if len(self._memo) >= self.MAX_ENTRIES:
                self._memo.clear()
            self._memo[key] = found
        return dict(found)


class Blueprint(flask_smorest.Blueprint):
    """The service's blueprints: flask-smorest's, with query strings parsed once."""

    ARGUMENTS_PARSER = QueryMemoParser()


def state() -> State:
    return current_app.extensions["recsys"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def error_response(status: int, code: str, message: str, retry_after: int | None = None):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def require(role: str):
    """Allow the request only with an X-API-Key whose role grants ``role``."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            key = state().keys.lookup(request.headers.get("X-API-Key"))
            if key is None:
                raise ApiError(401, "unauthorized", "missing or unknown API key (header X-API-Key)")
            if not allowed(key.role, role):
                raise ApiError(403, "forbidden", f"this API key's role '{key.role}' does not allow '{role}'")
            return view(*args, **kwargs)

        return inner

    return wrap


CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}\.(0|[1-9][0-9]{0,9})$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(offset: int, version: str | None) -> str:
    """``VERSION.OFFSET``: where the next page starts, in the list of this model version."""
    return f"{_cursor_version(version)}.{offset}"


def _cursor_version(version: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", version)[:64] if version else "unversioned"


def decode_cursor(cursor: str | None, version: str | None) -> int:
    """The offset a cursor names. A cursor of another model version is a 409 (the list changed:
    start again); one past the end gives an empty page."""
    if not cursor:
        return 0
    if not _CURSOR.fullmatch(cursor):
        raise ApiError(400, "bad_parameter", "cursor: not a cursor this service issues (VERSION.OFFSET)")
    ver, offset = cursor.rsplit(".", 1)
    if ver != _cursor_version(version):
        raise ApiError(409, "stale_cursor", "cursor: the model changed since this cursor was issued; start again")
    return int(offset)


def path_id(text: str, where: str = "customer_id") -> str:
    """A customer id from the URL path, as the service accepts ids (serving.fields)."""
    try:
        return check_id(text, where)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from None
