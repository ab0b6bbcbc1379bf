"""What every blueprint shares: the app's state, API-key checks, errors and cursors."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

import flask_smorest
from flask import current_app, jsonify, request
from marshmallow import Schema
from webargs.flaskparser import FlaskParser

from recsys.data.event_store import EventStore
from serving.auth import KeyStore, allowed
from serving.config import Settings
from serving.model import ModelHolder


@dataclass
class State:
    settings: Settings
    model: ModelHolder
    events: EventStore
    keys: KeyStore
    metrics: object
    held_out: object  # serving.answers.HeldOutRecorder: records held_out events in the events store


class QueryMemoParser(FlaskParser):
    """webargs' Flask parser that remembers what it parsed from each query string.

    Marketing tools send the same few query strings (k, channel, as_of) for thousands of
    customers: each is validated once per worker and its arguments reused. Parsing a query
    string with a schema is a pure function, so remembering it changes no answer; invalid
    query strings are not remembered and fail every time.
    """

    MAX_ENTRIES = 4096
    DEFAULT_VALIDATION_STATUS = 400  # bad parameters are a 400 in the service's error shape (and so documented)

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
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
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


def encode_cursor(offset: int, version: str | None) -> str:
    return base64.urlsafe_b64encode(f"{version or '-'}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, version: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ver, offset = raw.rsplit(":", 1)
        offset = int(offset)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_parameter", "cursor: not a cursor this service issued") from None
    if ver != (version or "-"):
        raise ApiError(400, "stale_cursor", "cursor: the model changed since this cursor was issued; start again")
    return offset
