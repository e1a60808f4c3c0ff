"""`/v1/recognitions`: game clients post doodles and read back the model's guess.

A POST is one INSERT and one Redis round trip that publishes the task and, with `Prefer:
wait`, pops the result the worker hands over: the row is never read back.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from redis.exceptions import RedisError

from api.auth import require_client_key
from api.contract.parsing import read_body
from api.errors import NotFound, UnsupportedMediaType
from api.resources import resources
from api.schemas import (
    QUEUED,
    parse_json_recognition,
    parse_png_recognition,
    recognition_document,
    recognition_json,
)
from api.waiting import publish_and_wait, requested_wait
from core.logs import current_request_id
from core.tasks import QUEUE, done_channel, recognition_message
from db.recognitions import NewRecognition, get_recognition, insert_recognition

log = logging.getLogger(__name__)

bp = Blueprint("recognitions", __name__, url_prefix="/v1/recognitions")

FINISHED = ("done", "failed")


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("no such recognition", {"id": raw}) from None


def _answer(document: dict[str, Any], *, accepted: bool) -> Response:
    """200 with the document; for a POST not finished yet, 202 pointing at where to look."""
    response = jsonify(document)
    location = url_for("recognitions.read", recognition_id=document["id"])
    response.headers["Content-Location"] = location
    if accepted and document["status"] not in FINISHED:
        response.status_code = 202
        response.headers["Location"] = location
        response.headers["Retry-After"] = "1"
    return response


def _parse(settings: Any, key: str) -> NewRecognition:
    mimetype = request.mimetype
    if mimetype == "application/json":
        data = read_body(request, settings.max_body_bytes)
        return parse_json_recognition(data, request.args.to_dict(), settings, key)
    if mimetype == "image/png":
        data = read_body(request, settings.max_body_bytes)
        return parse_png_recognition(data, request.args.to_dict(), key)
    raise UnsupportedMediaType(
        "send the drawing as application/json strokes or an image/png",
        {"content_type": request.content_type},
    )


@bp.post("")
def create() -> Response:
    res = resources()
    settings = res.settings
    key = require_client_key(settings.client_keys, "recognitions", settings.rate_recognitions)
    new = _parse(settings, key)
    with res.autocommit.connect() as conn:
        accepted = insert_recognition(conn, new)
    message = recognition_message(accepted.id, current_request_id())
    wait = requested_wait(request.headers.get("Prefer"), res.settings.max_wait_seconds)
    result: dict[str, Any] | None = None
    try:
        result = publish_and_wait(res.redis, QUEUE, message, done_channel(accepted.id), wait)
    except RedisError:
        # The row is durable: the sweeper sends it once the broker is back.
        log.exception("could not publish or wait for recognition %s; answering 202", accepted.id)
    document = recognition_document(
        accepted.id, new.word, new.player_id, accepted.created_at, result or QUEUED
    )
    if accepted.player_secret is not None:
        # Once, to a player this doodle made: it proves who they are (api.auth.require_player).
        document["player_secret"] = accepted.player_secret
    return _answer(document, accepted=True)


@bp.get("/<recognition_id>")
def read(recognition_id: str) -> Response:
    res = resources()
    caller = require_client_key(res.settings.client_keys)
    rid = _parse_id(recognition_id)
    with res.sessions() as s:
        row = get_recognition(s, rid)
        # Another client's recognition is as unknown as one that never was.
        if row is None or row.client_key_id != caller:
            raise NotFound("no such recognition", {"id": str(rid)})
        document = recognition_json(row)
    return _answer(document, accepted=False)
