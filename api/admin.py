"""`/v1/admin/models`: the model registry for admins (bearer token from DOODLE_ADMIN_TOKENS).

Promote and rollback move the `production` alias; workers pick the move up within
seconds. The actor recorded in the alias history and the audit log is
`admin:<short hash of the token>`, never the token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from api.auth import admin_actor, protect_admin_blueprint
from api.contract import limits
from api.contract.parsing import read_body
from api.errors import Conflict, InvalidRequest, NotFound
from api.resources import resources
from api.schemas import parse_move_reason
from db import registry
from db.models import ModelVersion

bp = Blueprint("admin_models", __name__, url_prefix="/v1/admin/models")

ALIAS_NAME_LENGTH = limits.ALIAS_NAME_LENGTH


protect_admin_blueprint(bp)


def _version_json(v: ModelVersion, aliases: list[str], *, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": v.id,
        "aliases": aliases,
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


def _moved(s: Session, action: str, previous: int | None, version: ModelVersion) -> Response:
    move = registry.latest_move(s, registry.PRODUCTION) if previous != version.id else None
    aliases = registry.aliases_of(s).get(version.id, [])
    return jsonify(
        {
            "action": action,
            "alias": registry.PRODUCTION,
            # The move's own `from` was read under the alias lock: exact even under races.
            "from": previous if move is None else move.from_version_id,
            "to": version.id,
            "moved": move is not None,
            "move": None if move is None else registry.move_as_dict(move),
            "model": _version_json(version, aliases),
        }
    )


def _production_id(s: Session) -> int | None:
    current = registry.get_alias(s, registry.PRODUCTION)
    return None if current is None else current.id


@bp.get("")
def list_models() -> Response:
    with resources().sessions() as s:
        aliases = registry.aliases_of(s)
        versions = [_version_json(v, aliases.get(v.id, [])) for v in registry.list_versions(s)]
        return jsonify({"versions": versions, "production": _production_id(s)})


# Digits only, so `GET /rollback` is a 405 (only POST is routed there), not an unknown
# version; the bound keeps ids within a Postgres integer.
VERSION = f"<int(max={limits.MAX_VERSION_ID}):version>"


@bp.get(f"/{VERSION}")
def read_model(version: int) -> Response:
    version_id = version
    with resources().sessions() as s:
        v = registry.get_version(s, version_id)
        if v is None:
            raise NotFound("no such model version", {"version": version_id})
        return jsonify(_version_json(v, registry.aliases_of(s).get(v.id, []), full=True))


@bp.post(f"/{VERSION}/promote")
def promote(version: int) -> Response:
    version_id = version
    reason = _reason()
    with resources().sessions.begin() as s:
        previous = _production_id(s)
        try:
            promoted = registry.promote(s, version_id, actor=admin_actor(), reason=reason)
        except registry.UnknownModelVersion:
            raise NotFound("no such model version", {"version": version_id}) from None
        return _moved(s, "promote", previous, promoted)


@bp.post("/rollback")
def rollback() -> Response:
    reason = _reason()
    with resources().sessions.begin() as s:
        previous = _production_id(s)
        try:
            restored = registry.rollback(s, actor=admin_actor(), reason=reason)
        except registry.NothingToRollBack as exc:
            raise Conflict(str(exc), {"alias": registry.PRODUCTION}) from None
        return _moved(s, "rollback", previous, restored)


@bp.get("/aliases/<alias>/history")
def alias_history(alias: str) -> Response:
    if len(alias) > ALIAS_NAME_LENGTH or not alias.isprintable():  # never a valid name
        raise NotFound("no such alias", {"alias": alias[:ALIAS_NAME_LENGTH]})
    with resources().sessions() as s:
        moves = registry.alias_history(s, alias)
        if not moves:
            raise NotFound("no such alias", {"alias": alias})
        return jsonify({"alias": alias, "history": [registry.move_as_dict(h) for h in moves]})
