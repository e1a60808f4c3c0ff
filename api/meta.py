"""Service routes: liveness, readiness, the words the model knows, the OpenAPI document."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.metrics import workers_alive
from api.openapi import openapi_document
from api.resources import resources
from core.metrics import CONSUMER_PREFIX
from core.tasks import BATCH_QUEUES
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
    failing = [f"{name}: {c['error']}" for name, c in checks.items() if not c["ok"]]
    if not failing:
        return jsonify({"status": "ready", "checks": checks})
    response = jsonify({"status": "unavailable", "reason": "; ".join(failing), "checks": checks})
    response.status_code = 503
    # A worker that starts counts from its first beat: ask again about a beat later.
    response.headers["Retry-After"] = str(max(1, math.ceil(res.settings.worker_heartbeat_seconds)))
    return response


def _workers(res: Any) -> dict[str, Any]:
    """Live workers on each batch queue (by their consumers' beats, workers.metrics): not
    ready while fewer than DOODLE_READY_MIN_WORKERS (default 1) take recognitions, or live
    guesses, off the broker, since a request sent then would wait for nobody. 0 turns the
    check off (the API still accepts doodles durably, for workers to come). `alive` counts
    worker processes by their own heartbeats, as /metrics does."""
    required = res.settings.ready_min_workers
    try:
        consumers = _consumers(res.redis)
        alive: int | None = len(workers_alive(res.redis))
    except Exception as exc:  # readiness reports any failure, it never raises
        log.warning("readiness check workers failed: %s", exc)
        report = {"ok": required <= 0, "alive": None, "required": required, "queues": None}
        return report if required <= 0 else {**report, "error": "worker beats are unreadable"}
    missing = [queue for queue in BATCH_QUEUES if consumers[queue] < required]
    report = {"ok": not missing, "alive": alive, "required": required, "queues": consumers}
    if missing:
        report["error"] = "; ".join(_lacking(q, consumers[q], required) for q in missing)
    return report


def _lacking(queue: str, alive: int, required: int) -> str:
    if alive == 0:
        return f"no live worker consumes the {queue} queue"
    return f"{alive} live workers consume the {queue} queue, {required} required"


def _consumers(client: Any) -> dict[str, int]:
    """Live consumers by batch queue: keys `doodle:consumer:<queue>:<host>:<pid>`."""
    counts = dict.fromkeys(BATCH_QUEUES, 0)
    for key in client.scan_iter(match=f"{CONSUMER_PREFIX}*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        queue = name.removeprefix(CONSUMER_PREFIX).split(":", 1)[0]
        if queue in counts:
            counts[queue] += 1
    return counts


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
