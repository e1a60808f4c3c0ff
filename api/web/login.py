"""Login sessions of the admin page: who is logged in, with which role, and their CSRF token.

A session lives in Redis under a random id; the cookie holds that id signed with the
session key (DOODLE_SESSION_KEY, or a random key kept in home/session.key), never the
token. Each request re-checks that the token it was opened with is still configured, so
removing a token from the settings ends its sessions; logging out deletes the session.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass

from flask import Flask, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from api.auth import Role, key_id
from api.resources import resources
from core.kept_secrets import kept_secret
from core.settings import Settings

COOKIE = "doodle_admin_session"
LOGIN_CSRF_COOKIE = "doodle_admin_login"  # double-submit token of the login form
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_REDIS_PREFIX = "doodle:web:session:"
_KEY_EXTENSION = "doodle_web_session_key"


@dataclass(frozen=True)
class WebSession:
    sid: str
    role: Role
    token_id: str
    csrf: str

    @property
    def actor(self) -> str:
        """How audit rows and the alias history name the holder (as the bearer API does)."""
        return f"{self.role.value}:{self.token_id}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def session_key(app: Flask, settings: Settings) -> str:
    if _KEY_EXTENSION not in app.extensions:
        key = settings.session_key
        if not key:
            key, _ = kept_secret(settings.home / "session.key", lambda: secrets.token_hex(32))
        app.extensions[_KEY_EXTENSION] = key
    return str(app.extensions[_KEY_EXTENSION])


def _signer() -> URLSafeTimedSerializer:
    key = session_key(current_app, resources().settings)
    return URLSafeTimedSerializer(key, salt="doodle-admin-session")


def _lifetime_seconds() -> int:
    return max(60, int(resources().settings.session_hours * 3600))


def _token_ids(settings: Settings, role: Role) -> set[str]:
    tokens = settings.admin_tokens if role is Role.ADMIN else settings.reviewer_tokens
    return {key_id(token) for token in tokens}


def start(role: Role, token_id: str) -> WebSession:
    """A new session in Redis (with its own CSRF token); `set_cookie` hands it out."""
    session = WebSession(secrets.token_urlsafe(32), role, token_id, secrets.token_urlsafe(32))
    value = json.dumps({"role": role.value, "token_id": token_id, "csrf": session.csrf})
    resources().redis.set(_REDIS_PREFIX + session.sid, value, ex=_lifetime_seconds())
    return session


def current() -> WebSession | None:
    """The request's session, if its cookie is genuine, unexpired and its token still valid."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        sid = _signer().loads(raw, max_age=_lifetime_seconds())
    except BadSignature:
        return None
    if not isinstance(sid, str):
        return None
    stored = resources().redis.get(_REDIS_PREFIX + sid)
    if stored is None:
        return None
    data = json.loads(stored)
    role = Role(data["role"])
    if data["token_id"] not in _token_ids(resources().settings, role):
        end(sid)  # the token was removed from the settings: so is its session
        return None
    return WebSession(sid, role, data["token_id"], data["csrf"])


def end(sid: str) -> None:
    resources().redis.delete(_REDIS_PREFIX + sid)


def _cookie_flags() -> dict[str, object]:
    return {"httponly": True, "samesite": "Strict", "secure": request.is_secure, "path": "/admin"}


def set_cookie(response: Response, session: WebSession) -> None:
    signed = _signer().dumps(session.sid)
    response.set_cookie(COOKIE, signed, max_age=_lifetime_seconds(), **_cookie_flags())  # type: ignore[arg-type]
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="Strict")


def login_csrf() -> str:
    """The login form's token: the one already in its cookie, or a new one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_login_csrf(response: Response, token: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_flags())  # type: ignore[arg-type]


def same(sent: str | None, expected: str) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent).encode(), expected.encode())


def sent_csrf() -> str | None:
    """The CSRF token a POST carries: a form field, or the header for JavaScript's POSTs."""
    return request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
