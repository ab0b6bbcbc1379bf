"""API keys: stored only as SHA-256 hashes in a JSON file, compared in constant time.

Roles: ``read`` (offers, churn, segments, model), ``events`` (read, and posting offer events),
``admin`` (everything, including reloading the model).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from recsys.io import write_text_atomic

ROLES = ("read", "events", "admin")
GRANTS = {"read": {"read"}, "events": {"read", "events"}, "admin": {"read", "events", "admin"}}
KEY_PREFIX = "rk_"
logger = logging.getLogger(__name__)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    name: str


class KeyStore:
    """The keys file: ``{"keys": [{"id", "name", "role", "sha256"}]}``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stamp = self._mtime()
        self._entries = self._read()

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def _refresh(self) -> None:
        """Re-read the file when it changed: a key added or removed takes effect without a restart.
        A file that does not parse (being edited by hand) leaves the keys as they were, logged."""
        stamp = self._mtime()
        if stamp != self._stamp:
            try:
                self._entries = self._read()
            except ValueError as exc:
                logger.error("keeping the API keys read before: %s", exc)
            self._stamp = stamp

    def _read(self) -> list[dict]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text())
            entries = data["keys"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not an API keys file ({exc})") from None
        for e in entries:
            if e.get("role") not in ROLES or not isinstance(e.get("sha256"), str):
                raise ValueError(f"{self.path}: key {e.get('id')!r} has no valid role or hash")
        return entries

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str | None) -> ApiKey | None:
        """The key's entry, or None. Every stored hash is compared, in constant time each."""
        if not key:
            return None
        self._refresh()
        digest = _digest(key)
        found = None
        for e in self._entries:
            if hmac.compare_digest(digest, e["sha256"]):
                found = e
        return ApiKey(found["id"], found["role"], found.get("name", "")) if found else None

    def by_id(self, key_id: str) -> ApiKey | None:
        """The entry of a key id (a session names its key by id), or None when it was removed."""
        self._refresh()
        for e in self._entries:
            if e["id"] == key_id:
                return ApiKey(e["id"], e["role"], e.get("name", ""))
        return None

    def entries(self) -> list[ApiKey]:
        self._refresh()
        return [ApiKey(e["id"], e["role"], e.get("name", "")) for e in self._entries]

    def revoke(self, *, name: str | None = None, key_id: str | None = None) -> list[ApiKey]:
        """Remove the keys of ``name`` (or the one of ``key_id``); the removed ones. The file is
        rewritten atomically, and every worker stops accepting them at its next request."""
        if (name is None) == (key_id is None):
            raise ValueError("give a key's name or its id")
        entries = self._read()
        gone = [e for e in entries if (e.get("name") == name if name is not None else e["id"] == key_id)]
        if gone:
            kept = [e for e in entries if e not in gone]
            write_text_atomic(self.path, json.dumps({"keys": kept}, indent=2), mode=0o600)
            self._stamp, self._entries = self._mtime(), kept
        return [ApiKey(e["id"], e["role"], e.get("name", "")) for e in gone]

    def create(self, role: str, name: str = "") -> str:
        """Add a new key and return it; only its hash is written (atomically)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        entry = {"id": f"key_{secrets.token_hex(4)}", "name": name, "role": role, "sha256": _digest(key)}
        entries = [*self._read(), entry]
        write_text_atomic(self.path, json.dumps({"keys": entries}, indent=2), mode=0o600)
        self._stamp = self._mtime()
        self._entries = entries
        return key


def allowed(role: str, needed: str) -> bool:
    return needed in GRANTS.get(role, set())
