"""API keys of game clients (X-API-Key), bearer tokens of admins and reviewers (their
roles: `Role`) and players' secrets (X-Player-Secret), with the rate limits that go with
them (api.rate_limits): failed attempts per address, requests per client key."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, g, request

from api.errors import ApiError, NotFound, Unauthorized
from api.rate_limits import too_many
from api.resources import resources
from core.rates import Rate
from core.settings import Settings
from db.players import find_player, hash_secret
from services.errors import UnknownPlayer
from services.players import admin_acts_for


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


def key_id(key: str) -> str:
    """A short, non-reversible name for a key, safe to store and log."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _matches(candidate: str, allowed: Iterable[str]) -> bool:
    # Compare against every key, in constant time, so timing tells nothing.
    found = False
    for key in allowed:
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


def admit_attempt(
    authenticated: bool, bucket: str = "", who: str = "", rate: Rate | None = None
) -> None:
    """Count the attempt; 429 if its address failed too often, or its key sent too much."""
    verdict = resources().limiter.count(
        request.remote_addr or "unknown", authenticated, bucket, who, rate
    )
    if verdict.failures_over is not None:
        raise too_many(
            "too many failed authentications from this address; try again later",
            verdict.failures_over,
            {"limit": str(resources().settings.rate_auth_failures)},
        )
    if verdict.rate_over is not None:
        raise too_many(
            f"this key sent more {bucket} than its limit; slow down",
            verdict.rate_over,
            {"limit": str(rate)},
        )


def require_client_key(
    allowed: tuple[str, ...], bucket: str | None = None, rate: Rate | None = None
) -> str:
    """Return the id of the request's valid X-API-Key, or raise Unauthorized.

    With a `bucket` ("recognitions" or "guesses"), the request counts against the key's
    `rate` for it.
    """
    candidate = request.headers.get("X-API-Key", "")
    valid = bool(candidate) and _matches(candidate, allowed)
    who = key_id(candidate) if valid else ""
    admit_attempt(valid, bucket or "", who, rate if bucket else None)
    if not candidate:
        raise Unauthorized("missing X-API-Key header")
    if not valid:
        raise Unauthorized("unknown API key")
    return who


class Role(StrEnum):
    """Who holds a bearer token. Reviewers look at doodles and decide about them; admins
    can do that too, and also move models, start cycles and act for players."""

    REVIEWER = "reviewer"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return needed is Role.REVIEWER or self is Role.ADMIN


def role_for_token(settings: Settings, token: str) -> tuple[Role, str] | None:
    """The role of a bearer token and its id (a short hash, for audit rows), or None.

    Every configured token is compared, in constant time, whatever matches first: the
    time taken tells nothing about which list a token is in. A token in both lists is an
    admin's.
    """
    if not token:
        return None
    admin = _matches(token, settings.admin_tokens)
    reviewer = _matches(token, settings.reviewer_tokens)
    if admin:
        return Role.ADMIN, key_id(token)
    if reviewer:
        return Role.REVIEWER, key_id(token)
    return None


def require_role(needed: Role) -> tuple[Role, str]:
    """The request's bearer token holds `needed` (an admin holds every role): returns its
    role and id, else raises Unauthorized (no token, malformed, unknown) or Forbidden (a
    reviewer's token on an admin-only action). Unknown tokens count as failed attempts."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    well_formed = scheme.lower() == "bearer" and bool(token)
    found = role_for_token(resources().settings, token) if well_formed else None
    admit_attempt(found is not None)
    if not header:
        raise Unauthorized("missing Authorization header (Bearer token)")
    if not well_formed:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    if found is None:
        raise Unauthorized("unknown admin or reviewer token")
    role, token_id = found
    if not role.allows(needed):
        raise Forbidden(
            f"this action needs an {needed} token; a {role} token may not do it",
            {"role": role.value, "needed": needed.value},
        )
    g.token_role, g.admin_token_id = role, token_id
    return role, token_id


def require_admin_token() -> str:
    """Return the id of the request's admin bearer token, or raise Unauthorized (401), or
    Forbidden (403) for a reviewer's token.

    `Authorization: Bearer <token>`, with the token one of DOODLE_ADMIN_TOKENS. The id
    (a short hash) names the admin in history and audit rows; the token is never stored.
    """
    return require_role(Role.ADMIN)[1]


def protect_admin_blueprint(bp: Blueprint, needed: Role = Role.ADMIN) -> None:
    """Every route of `bp` needs a bearer token of role `needed` (admin unless said
    otherwise; `requires_role` raises it for single routes); `admin_actor()` names its
    holder."""

    @bp.before_request
    def _authenticate() -> None:
        require_role(needed)

    @bp.after_request
    def _bearer_challenge(response: Response) -> Response:
        # The shared error handler names the client key scheme; these routes want a bearer.
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="doodle-admin"'
        return response


View = TypeVar("View", bound=Callable[..., Any])


def requires_role(needed: Role) -> Callable[[View], View]:
    """A route of a reviewers' blueprint that only admins may use (403 for a reviewer).
    The blueprint's hook has authenticated the request already; elsewhere this does."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            role = g.get("token_role")
            if role is None or not role.allows(needed):
                require_role(needed)
            return view(*args, **kwargs)

        return cast(View, guarded)

    return wrap


def admin_actor() -> str:
    """The holder of the request's token as audit rows name it: `admin:<token id>` or
    `reviewer:<token id>`."""
    return f"{g.token_role}:{g.admin_token_id}"


@dataclass(frozen=True)
class Actor:
    """Who asks for a player's data: the player (their secret) or an admin acting for them."""

    name: str  # "player", or "admin:<token id>"

    @property
    def is_admin(self) -> bool:
        return self.name.startswith("admin:")


# Compared against when the player is unknown or has no secret, so that an unknown id
# costs the same time as a wrong secret.
_NO_HASH = hash_secret("no player has this secret")


def require_player(player_id: str, action: str) -> Actor:
    """The request may act on `player_id`'s data, or raise.

    Either `X-Player-Secret` is the secret the API issued to that player (compared in
    constant time with the stored hash), or `Authorization: Bearer <admin token>` acts for
    the player, and an audit row (`action`, the player's keyed ref) records it. A client
    key alone proves nothing. 401 without a credential, 403 with a wrong secret; an unknown
    player is 404 only to an admin: to anyone else it is a wrong secret, so that ids
    cannot be probed.
    """
    res = resources()
    if request.headers.get("Authorization"):
        token_id = require_admin_token()
        actor = Actor(f"admin:{token_id}")
        try:
            admin_acts_for(
                res.sessions,
                res.settings,
                actor=actor.name,
                action=action,
                player_id=player_id,
                details={"method": request.method, "route": str(request.url_rule)},
            )
        except UnknownPlayer:
            raise NotFound("no such player", {}) from None
        return actor
    secret = request.headers.get("X-Player-Secret", "")
    if not secret:
        admit_attempt(False)
        raise Unauthorized(
            "missing X-Player-Secret header (the secret issued with the player's first "
            "recognition), or an admin bearer token"
        )
    with res.sessions() as s:
        known = find_player(s, player_id)
    stored = known.secret_hash if known and known.secret_hash else _NO_HASH
    valid = hmac.compare_digest(hash_secret(secret).encode(), stored.encode()) and (
        known is not None and known.secret_hash is not None
    )
    admit_attempt(valid)
    if not valid:
        raise Forbidden("this secret does not prove the request is from that player", {})
    return Actor("player")
