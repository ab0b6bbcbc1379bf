"""The request fields whose meaning the service defines exactly: ids and whole numbers.

An id is an integer or a string, taken exactly as sent: no other number type, no boolean, no
spaces stripped, no other digits than ASCII 0-9 read as a number. The OpenAPI document states
the same rules (``ID_SCHEMA``), so clients and the service agree on what is accepted.
"""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields

ID_MAX_LENGTH = 128  # the events store's id columns hold as much
CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
# What an id string may hold: printable characters, no control characters (NUL included)
ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"
_ID_TEXT = re.compile(ID_PATTERN)
INT64 = (-(2**63), 2**63 - 1)

ID_SCHEMA = {
    "oneOf": [
        {"type": "integer", "format": "int64", "minimum": INT64[0], "maximum": INT64[1]},
        {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH, "pattern": ID_PATTERN},
    ]
}


def check_id(value, where: str = "id"):
    """``value`` if it is an id the service accepts; ValueError naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{where}: must be an integer or a string, not {_json_type(value)}")
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{where}: is out of range for a 64-bit integer")
    if isinstance(value, str) and not _ID_TEXT.fullmatch(value):
        raise ValueError(
            f"{where}: must be 1 to {ID_MAX_LENGTH} characters without control characters"
            + (f" (got {len(value)})" if len(value) > ID_MAX_LENGTH else "")
        )
    return value


def parse_int_id(text: str) -> int | None:
    """The integer an id string names exactly (canonical ASCII decimal), or None."""
    if CANONICAL_INT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if INT64[0] <= value <= INT64[1] else None


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Id(fields.Field):
    """A customer, offer or campaign id (``check_id``)."""

    def __init__(self, **kwargs):
        metadata = {**ID_SCHEMA, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return check_id(value, "value")
        except ValueError as exc:
            raise ValidationError(str(exc).removeprefix("value: ")) from None


class WholeNumber(fields.Integer):
    """An integer sent as a JSON integer or, in a query string (``text=True``), as ASCII decimal
    digits; 2.5, true, "1_000" and other digits are refused, never truncated or converted."""

    def __init__(self, *, text: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.text = text

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not self.text):
            raise self.make_error("invalid")
        if isinstance(value, str):
            if CANONICAL_INT.fullmatch(value) is None:
                raise self.make_error("invalid")
            value = int(value)
        return super()._validated(value)
