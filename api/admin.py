"""`/v1/admin/models`: the model registry. Reviewers (DOODLE_REVIEWER_TOKENS) may read it;
only admins (DOODLE_ADMIN_TOKENS) promote and roll back.

Promote and rollback move the `production` alias; workers pick the move up within
seconds. The actor recorded in the alias history and the audit log is
`admin:<short hash of the token>`, never the token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import Role, admin_actor, protect_admin_blueprint, requires_role
from api.contract import limits
from api.contract.parsing import read_body
from api.errors import Conflict, InvalidRequest, NotFound
from api.resources import resources
from api.schemas import parse_move_reason
from db.registry import Alias
from services import registry
from services.errors import NothingToRollBack, UnknownVersion

bp = Blueprint("admin_models", __name__, url_prefix="/v1/admin/models")

ALIAS_NAME_LENGTH = limits.ALIAS_NAME_LENGTH


protect_admin_blueprint(bp, Role.REVIEWER)


def _version_json(v: registry.VersionInfo, *, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": v.id,
        "aliases": v.aliases,
        "classes": list(v.classes),
        "metrics": v.metrics,
        "parent": v.parent_id,
        "created_at": v.created_at.isoformat(),
        "architecture": v.architecture,
        "source": v.source,
        "checksum": v.checksum,
    }
    if full:
        body["dataset_manifest"] = v.dataset_manifest
    return body


def _reason() -> str:
    """The optional JSON body {"reason": "..."}; an empty body means no reason."""
    data = read_body(request, resources().settings.max_body_bytes)
    if data.strip() and request.mimetype != "application/json":
        raise InvalidRequest("send the body as application/json", {"field": "body"})
    return parse_move_reason(data)


def _moved(action: str, move: registry.AliasMove) -> Response:
    return jsonify(
        {
            "action": action,
            "alias": move.alias,
            "from": move.previous,
            "to": move.version.id,
            "moved": move.moved,
            "move": move.move,
            "model": _version_json(move.version),
        }
    )


@bp.get("")
def list_models() -> Response:
    versions = registry.list_versions(resources().sessions)
    production = next((v.id for v in versions if Alias.PRODUCTION in v.aliases), None)
    return jsonify({"versions": [_version_json(v) for v in versions], "production": production})


# Digits only, so `GET /rollback` is a 405 (only POST is routed there), not an unknown
# version; the bound keeps ids within a Postgres integer.
VERSION = f"<int(max={limits.MAX_VERSION_ID}):version>"


@bp.get(f"/{VERSION}")
def read_model(version: int) -> Response:
    try:
        info = registry.describe_version(resources().sessions, version)
    except UnknownVersion:
        raise NotFound("no such model version", {"version": version}) from None
    return jsonify(_version_json(info, full=True))


@bp.post(f"/{VERSION}/promote")
@requires_role(Role.ADMIN)
def promote(version: int) -> Response:
    reason = _reason()
    try:
        move = registry.promote(resources().sessions, version, actor=admin_actor(), reason=reason)
    except UnknownVersion:
        raise NotFound("no such model version", {"version": version}) from None
    return _moved("promote", move)


@bp.post("/rollback")
@requires_role(Role.ADMIN)
def rollback() -> Response:
    reason = _reason()
    try:
        move = registry.rollback(resources().sessions, actor=admin_actor(), reason=reason)
    except NothingToRollBack as exc:
        raise Conflict(str(exc), {"alias": Alias.PRODUCTION.value}) from None
    return _moved("rollback", move)


@bp.get("/aliases/<alias>/history")
def alias_history(alias: str) -> Response:
    if len(alias) > ALIAS_NAME_LENGTH or not alias.isprintable():  # never a valid name
        raise NotFound("no such alias", {"alias": alias[:ALIAS_NAME_LENGTH]})
    moves = registry.alias_history(resources().sessions, alias)
    if not moves:
        raise NotFound("no such alias", {"alias": alias})
    return jsonify({"alias": alias, "history": moves})
