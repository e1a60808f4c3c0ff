"""Service routes: liveness, readiness, the words the model knows, the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.metrics import workers_alive
from api.openapi import openapi_document
from api.resources import resources
from db import registry
from db.registry import Alias

log = logging.getLogger(__name__)

bp = Blueprint("meta", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


class NotReady(Exception):
    """A reason readiness may show anyone: it names no host, path or endpoint."""


def _check(name: str, probe: Any, results: dict[str, Any]) -> None:
    try:
        detail = probe()
        results[name] = {"ok": True, **(detail or {})}
    except NotReady as exc:
        results[name] = {"ok": False, "error": str(exc)}
    except Exception as exc:  # readiness reports any failure, it never raises
        # The driver's message names hosts, ports or paths: the log has it, callers do not.
        log.warning("readiness check %s failed: %s", name, exc)
        results[name] = {"ok": False, "error": f"{name} is unreachable or failing"}


@bp.get("/readyz")
def readyz() -> Response:
    res = resources()
    checks: dict[str, Any] = {}

    def database() -> None:
        with res.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def model() -> dict[str, Any]:
        with res.sessions() as s:
            version = registry.get_alias(s, Alias.PRODUCTION)
            if version is None:
                raise NotReady("no production model: run `doodle models import`")
            if not res.storage.exists(version.artifact_key):
                raise NotReady(f"weights of version {version.id} missing from storage")
            return {"version": version.id, "classes": len(version.classes)}

    _check("database", database, checks)
    _check("redis", lambda: res.redis.ping() and None, checks)
    _check("storage", lambda: res.storage.check(), checks)  # a bad URL fails here, not above
    _check("model", model, checks)
    checks["workers"] = _workers(res)
    ready = all(c["ok"] for c in checks.values())
    response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


def _workers(res: Any) -> dict[str, Any]:
    """Worker processes alive (by their heartbeats). Not ready with fewer than
    DOODLE_READY_MIN_WORKERS (default 0: the API still accepts doodles, durably, for workers
    to come; set 1 where a balancer should only send traffic that can be answered now)."""
    required = res.settings.ready_min_workers
    try:
        alive = len(workers_alive(res.redis))
    except Exception as exc:  # readiness reports any failure, it never raises
        log.warning("readiness check workers failed: %s", exc)
        return {"ok": required == 0, "alive": None, "required": required}
    return {"ok": alive >= required, "alive": alive, "required": required}


@bp.get("/v1/words")
def words() -> Response:
    with resources().sessions() as s:
        version = registry.get_alias(s, Alias.PRODUCTION)
        if version is None:
            return jsonify({"words": [], "model_version": None})
        return jsonify({"words": sorted(version.classes), "model_version": version.id})


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
