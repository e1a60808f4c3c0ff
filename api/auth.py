"""API keys of game clients (X-API-Key) and bearer tokens of admins."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from flask import Blueprint, Response, g, request

from api.errors import Unauthorized
from api.resources import resources


def key_id(key: str) -> str:
    """A short, non-reversible name for a key, safe to store and log."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _matches(candidate: str, allowed: Iterable[str]) -> bool:
    # Compare against every key, in constant time, so timing tells nothing.
    found = False
    for key in allowed:
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


def require_client_key(allowed: tuple[str, ...]) -> str:
    """Return the id of the request's valid X-API-Key, or raise Unauthorized."""
    candidate = request.headers.get("X-API-Key", "")
    if not candidate:
        raise Unauthorized("missing X-API-Key header")
    if not _matches(candidate, allowed):
        raise Unauthorized("unknown API key")
    return key_id(candidate)


def require_admin_token(allowed: tuple[str, ...]) -> str:
    """Return the id of the request's valid admin bearer token, or raise Unauthorized.

    `Authorization: Bearer <token>`, with the token one of DOODLE_ADMIN_TOKENS. The id
    (a short hash) names the admin in history and audit rows; the token is never stored.
    """
    header = request.headers.get("Authorization", "")
    if not header:
        raise Unauthorized("missing Authorization header (Bearer token)")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    if not _matches(token, allowed):
        raise Unauthorized("unknown admin token")
    return key_id(token)


def protect_admin_blueprint(bp: Blueprint) -> None:
    """Every route of `bp` needs an admin bearer token; `admin_actor()` names its holder."""

    @bp.before_request
    def _authenticate() -> None:
        g.admin_token_id = require_admin_token(resources().settings.admin_tokens)

    @bp.after_request
    def _bearer_challenge(response: Response) -> Response:
        # The shared error handler names the client key scheme; these routes want a bearer.
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="doodle-admin"'
        return response


def admin_actor() -> str:
    return f"admin:{g.admin_token_id}"
