"""`/v1/recognitions`: game clients post doodles and read back the model's guess."""

from __future__ import annotations

import logging
import uuid

from flask import Blueprint, Response, jsonify, request, url_for
from redis.exceptions import RedisError

from api.auth import require_client_key
from api.errors import NotFound, UnsupportedMediaType
from api.resources import resources
from api.schemas import (
    parse_json_body,
    parse_json_recognition,
    parse_png_recognition,
    recognition_json,
)
from api.waiting import requested_wait, wait_until_done
from db.models import Recognition, RecognitionStatus
from db.recognitions import create_recognition, get_recognition
from workers.signatures import enqueue_recognition

log = logging.getLogger(__name__)

bp = Blueprint("recognitions", __name__, url_prefix="/v1/recognitions")

FINISHED = (RecognitionStatus.done, RecognitionStatus.failed)


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("no such recognition", {"id": raw}) from None


def _load(recognition_id: uuid.UUID) -> Recognition:
    with resources().sessions() as s:
        row = get_recognition(s, recognition_id)
    if row is None:
        raise NotFound("no such recognition", {"id": str(recognition_id)})
    return row


def _answer(row: Recognition, *, accepted: bool) -> Response:
    """200 with the row; for a POST not finished yet, 202 pointing at where to look."""
    response = jsonify(recognition_json(row))
    location = url_for("recognitions.read", recognition_id=row.id)
    response.headers["Content-Location"] = location
    if accepted and row.status not in FINISHED:
        response.status_code = 202
        response.headers["Location"] = location
        response.headers["Retry-After"] = "1"
    return response


@bp.post("")
def create() -> Response:
    res = resources()
    key = require_client_key(res.settings.client_keys)
    mimetype = request.mimetype
    if mimetype == "application/json":
        new = parse_json_recognition(parse_json_body(request.get_data()), res.settings, key)
    elif mimetype == "image/png":
        new = parse_png_recognition(request.get_data(), request.args.to_dict(), key)
    else:
        raise UnsupportedMediaType(
            "send the drawing as application/json strokes or an image/png",
            {"content_type": request.content_type},
        )
    with res.sessions.begin() as s:
        row = create_recognition(s, new)
    try:
        enqueue_recognition(res.celery, row.id)
    except Exception:
        # The row is durable: the sweeper re-enqueues it once the broker is back.
        log.exception("could not enqueue recognition %s; the sweeper will retry", row.id)
    wait = requested_wait(request.headers.get("Prefer"), res.settings.max_wait_seconds)
    if wait > 0:
        try:
            if wait_until_done(res.redis, row.id, wait):
                row = _load(row.id)
        except RedisError:
            log.exception("waiting for recognition %s failed; answering 202", row.id)
    return _answer(row, accepted=True)


@bp.get("/<recognition_id>")
def read(recognition_id: str) -> Response:
    require_client_key(resources().settings.client_keys)
    return _answer(_load(_parse_id(recognition_id)), accepted=False)
