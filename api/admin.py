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
from api.errors import Conflict, InvalidRequest, NotFound
from api.resources import resources
from api.schemas import parse_json_body
from db import registry
from db.models import ModelVersion

bp = Blueprint("admin_models", __name__, url_prefix="/v1/admin/models")

MAX_REASON_LENGTH = 1000
ALIAS_NAME_LENGTH = 32


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
    data = request.get_data()
    if not data.strip():
        return ""
    if request.mimetype != "application/json":
        raise InvalidRequest("send the body as application/json", {"field": "body"})
    body = parse_json_body(data)
    if not isinstance(body, dict) or set(body) - {"reason"}:
        raise InvalidRequest('the body may only hold {"reason": "..."}', {"field": "body"})
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise InvalidRequest(
            f"reason must be a string of at most {MAX_REASON_LENGTH} characters",
            {"field": "reason", "limit": MAX_REASON_LENGTH},
        )
    return reason


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


def _version_id(raw: str) -> int:
    # A plain <version> rule (not <int:>) keeps the URL map and OpenAPI paths alike.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise NotFound("no such model version", {"version": raw[:20]})
    return int(raw)


def _production_id(s: Session) -> int | None:
    current = registry.get_alias(s, registry.PRODUCTION)
    return None if current is None else current.id


@bp.get("")
def list_models() -> Response:
    with resources().sessions() as s:
        aliases = registry.aliases_of(s)
        versions = [_version_json(v, aliases.get(v.id, [])) for v in registry.list_versions(s)]
        return jsonify({"versions": versions, "production": _production_id(s)})


@bp.get("/<version>")
def read_model(version: str) -> Response:
    version_id = _version_id(version)
    with resources().sessions() as s:
        v = registry.get_version(s, version_id)
        if v is None:
            raise NotFound("no such model version", {"version": version_id})
        return jsonify(_version_json(v, registry.aliases_of(s).get(v.id, []), full=True))


@bp.post("/<version>/promote")
def promote(version: str) -> Response:
    version_id = _version_id(version)
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
    if len(alias) > ALIAS_NAME_LENGTH:
        raise NotFound("no such alias", {"alias": alias[:ALIAS_NAME_LENGTH]})
    with resources().sessions() as s:
        moves = registry.alias_history(s, alias)
        if not moves:
            raise NotFound("no such alias", {"alias": alias})
        return jsonify({"alias": alias, "history": [registry.move_as_dict(h) for h in moves]})
