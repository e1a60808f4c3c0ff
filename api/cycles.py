"""`/v1/admin/cycles`: ask for a flywheel cycle and follow it. Reviewers may look; only
admins ask for one.

`POST` asks for a cycle; the flywheel's trigger (`doodle flows serve`, every
DOODLE_FLYWHEEL_POLL_SECONDS) takes it. Never two at once: when a cycle is requested or
running already, the answer is 200 with that cycle (`existing: true`) instead of 202
with a new one; both carry its Location. Asking is idempotent, so a double click or a
retry never queues a second cycle.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from api.auth import Role, admin_actor, protect_admin_blueprint, requires_role
from api.contract.cycles import CycleListQuery, CycleRequest
from api.contract.parsing import Parser, read_body
from api.errors import InvalidRequest, NotFound
from api.resources import resources
from services import cycles

bp = Blueprint("admin_cycles", __name__, url_prefix="/v1/admin/cycles")
protect_admin_blueprint(bp, Role.REVIEWER)

_REQUEST: Parser[CycleRequest] = Parser(CycleRequest)
_LIST: Parser[CycleListQuery] = Parser(CycleListQuery)
# Digits only, within a Postgres bigint.
RUN_ID = "<int(max=9223372036854775807):run_id>"
DEFAULT_REASON = "asked for by an admin"


@bp.post("")
@requires_role(Role.ADMIN)
def request_cycle() -> Response:
    data = read_body(request, resources().settings.max_body_bytes)
    if data.strip() and request.mimetype != "application/json":
        raise InvalidRequest("send the body as application/json", {"field": "body"})
    reason = (_REQUEST.json(data).reason if data.strip() else "").strip() or DEFAULT_REASON
    run = cycles.request_cycle(resources().sessions, actor=admin_actor(), reason=reason)
    response = jsonify({"cycle": run.as_dict(), "existing": run.existing})
    response.status_code = 200 if run.existing else 202
    response.headers["Location"] = url_for("admin_cycles.read_cycle", run_id=run.id)
    return response


@bp.get("")
def list_cycles() -> Response:
    query = _LIST.python(request.args.to_dict())
    runs = cycles.recent_cycles(resources().sessions, limit=query.limit)
    active = cycles.active_cycle(resources().sessions)
    return jsonify(
        {"cycles": [r.as_dict() for r in runs], "active": None if active is None else active.id}
    )


@bp.get(f"/{RUN_ID}")
def read_cycle(run_id: int) -> Response:
    run = cycles.get_cycle(resources().sessions, run_id)
    if run is None:
        raise NotFound("no such cycle", {"cycle": run_id})
    return jsonify(run.as_dict())
