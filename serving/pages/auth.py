"""Who may see the page: the API's keys and roles, through a login form and a session cookie.

The form takes an API key; a key whose role grants ``read`` opens a session (a signed,
HTTP-only, SameSite=Lax cookie, Secure unless RECSYS_SECURE_COOKIES=0) that names the key, never
holds it. Every page checks that the key still exists, so a removed key ends its sessions.
Forms that change state (logout) carry a token of the session (CSRF).
"""

from __future__ import annotations

import functools
import hmac
import secrets
from urllib.parse import urlparse

from flask import redirect, request, session, url_for

from serving.auth import allowed
from serving.web import state

SESSION_KEY, SESSION_ROLE, SESSION_TOKEN = "key_id", "role", "csrf"


def current_key():
    """The session's API key entry, or None (no session, or its key was removed)."""
    key_id = session.get(SESSION_KEY)
    if key_id is None:
        return None
    found = state().keys.by_id(key_id)
    return found if found is not None and allowed(found.role, "read") else None


def login_required(view):
    @functools.wraps(view)
    def inner(*args, **kwargs):
        if current_key() is None:
            session.clear()
            return redirect(url_for("pages.login", next=request.full_path))
        return view(*args, **kwargs)

    return inner


def open_session(key) -> None:
    session.clear()
    session[SESSION_KEY], session[SESSION_ROLE] = key.key_id, key.role
    session[SESSION_TOKEN] = secrets.token_urlsafe(24)


def token_ok(form_token: str | None) -> bool:
    expected = session.get(SESSION_TOKEN)
    return bool(expected) and form_token is not None and hmac.compare_digest(expected, form_token)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of this page only (never another site)."""
    if target and target.startswith("/app/") and not urlparse(target).netloc:
        return target
    return url_for("pages.at_risk")
