"""The models page: versions and their golden figures side by side, the top-1 chart, the
confusion matrices, the alias history; promote, roll back and start a flywheel cycle
(admins only, each behind a confirmation page), and the cycles' progress."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from api.errors import Conflict, NotFound, ServiceUnavailable
from api.resources import resources
from api.web import admin_only, bp, web_session
from api.web.chart import Point, top1_chart
from core.storage import ObjectNotFound, StorageError
from db.registry import Alias
from services import cycles, registry
from services.errors import NothingToRollBack, UnknownVersion

REASON_LENGTH = 200


def _golden(version: registry.VersionInfo) -> dict[str, Any]:
    golden = version.metrics.get("golden")
    return golden if isinstance(golden, dict) else {}


def _reason() -> str:
    return request.form.get("reason", "").strip()[:REASON_LENGTH]


@bp.get("/models")
def models() -> str:
    res = resources()
    versions = registry.list_versions(res.sessions)
    points = [
        Point(v.id, v.created_at, float(_golden(v)["top1"]))
        for v in versions
        if isinstance(_golden(v).get("top1"), int | float)
    ]
    return render_template(
        "models.html",
        versions=versions,
        golden={v.id: _golden(v) for v in versions},
        chart=Markup(top1_chart(points)),  # built from numbers and escaped text only
        history=registry.alias_history(res.sessions, Alias.PRODUCTION),
        cycles=cycles.recent_cycles(res.sessions, limit=10),
        message=request.args.get("done", "")[:200],
    )


@bp.get("/models/<int:version>/confusion.png")
def confusion(version: int) -> Response:
    try:
        data = resources().storage.get(f"reports/models/{version}/confusion.png")
    except ObjectNotFound:
        raise NotFound("this version has no confusion matrix yet", {"version": version}) from None
    except StorageError:
        raise ServiceUnavailable("object storage is unavailable", {}) from None
    return Response(data, mimetype="image/png")


@bp.get("/models/<int:version>/promote")
def confirm_promote(version: int) -> str:
    admin_only()
    try:
        info = registry.describe_version(resources().sessions, version)
    except UnknownVersion:
        raise NotFound("no such model version", {"version": version}) from None
    return render_template(
        "confirm.html",
        title=f"Promote version {version} to production?",
        detail=f"Workers switch to v{info.id} within seconds.",
        action=url_for("web.promote", version=version),
        button="Promote",
    )


@bp.post("/models/<int:version>/promote")
def promote(version: int) -> BaseResponse:
    admin_only()
    try:
        move = registry.promote(
            resources().sessions, version, actor=web_session().actor, reason=_reason()
        )
    except UnknownVersion:
        raise NotFound("no such model version", {"version": version}) from None
    said = f"production is v{move.version.id}" + ("" if move.moved else " already")
    return _back(said)


@bp.get("/models/rollback")
def confirm_rollback() -> str:
    admin_only()
    return render_template(
        "confirm.html",
        title="Roll production back one step?",
        detail="Production goes back to the version it pointed at before the last move.",
        action=url_for("web.rollback"),
        button="Roll back",
    )


@bp.post("/models/rollback")
def rollback() -> BaseResponse:
    admin_only()
    try:
        move = registry.rollback(resources().sessions, actor=web_session().actor, reason=_reason())
    except NothingToRollBack as exc:
        raise Conflict(str(exc), {"alias": Alias.PRODUCTION.value}) from None
    return _back(f"rolled back: production is v{move.version.id}")


@bp.get("/cycles/new")
def confirm_cycle() -> str:
    admin_only()
    return render_template(
        "confirm.html",
        title="Start a flywheel cycle?",
        detail="Relabel, fine-tune, evaluate on the golden set and promote if the gate "
        "passes. One cycle runs at a time.",
        action=url_for("web.start_cycle"),
        button="Start cycle",
    )


@bp.post("/cycles")
def start_cycle() -> BaseResponse:
    admin_only()
    run = cycles.request_cycle(
        resources().sessions, actor=web_session().actor, reason=_reason() or "admin page"
    )
    said = f"cycle {run.id} " + ("was already " + run.status if run.existing else "requested")
    return _back(said)


@bp.get("/cycles/<int:run_id>")
def cycle_status(run_id: int) -> Response:
    """One cycle's progress, for the models page's polling."""
    run = cycles.get_cycle(resources().sessions, run_id)
    if run is None:
        raise NotFound("no such cycle", {"id": run_id})
    return jsonify(run.as_dict())


def _back(message: str) -> BaseResponse:
    return redirect(url_for("web.models", done=message), 303)
