"""Service routes: liveness, readiness, the words the model knows, the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.openapi import openapi_document
from api.resources import resources
from db import registry

log = logging.getLogger(__name__)

bp = Blueprint("meta", __name__)

PRODUCTION = "production"


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


def _check(name: str, probe: Any, results: dict[str, Any]) -> None:
    try:
        detail = probe()
        results[name] = {"ok": True, **(detail or {})}
    except Exception as exc:  # readiness reports any failure, it never raises
        log.warning("readiness check %s failed: %s", name, exc)
        results[name] = {"ok": False, "error": str(exc)[:200]}


@bp.get("/readyz")
def readyz() -> Response:
    res = resources()
    checks: dict[str, Any] = {}

    def database() -> None:
        with res.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def model() -> dict[str, Any]:
        with res.sessions() as s:
            version = registry.get_alias(s, PRODUCTION)
            if version is None:
                raise RuntimeError("no production model: run `doodle models import`")
            if not res.storage.exists(version.artifact_key):
                raise RuntimeError(f"weights of version {version.id} missing from storage")
            return {"version": version.id, "classes": len(version.classes)}

    _check("database", database, checks)
    _check("redis", lambda: res.redis.ping() and None, checks)
    _check("storage", res.storage.check, checks)
    _check("model", model, checks)
    ready = all(c["ok"] for c in checks.values())
    response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@bp.get("/v1/words")
def words() -> Response:
    with resources().sessions() as s:
        version = registry.get_alias(s, PRODUCTION)
        if version is None:
            return jsonify({"words": [], "model_version": None})
        return jsonify({"words": sorted(version.classes), "model_version": version.id})


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
