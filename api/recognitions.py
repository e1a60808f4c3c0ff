"""`/v1/recognitions`: game clients post doodles and read back the model's guess.

A POST is one INSERT and one Redis round trip that publishes the task and, with `Prefer:
wait`, pops the result the worker hands over: the row is never read back. The INSERT also
checks the named player's secret (X-Player-Secret) and records the Idempotency-Key; a
retry with a recorded key reads back what its first request made.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for
from redis.exceptions import RedisError

from api.auth import admit_attempt, require_client_key
from api.contract.parsing import read_body
from api.errors import Conflict, NotFound, Unauthorized, UnsupportedMediaType
from api.idempotency import check_same_request, mark_replayed, requested_claim
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
from db.idempotency import KeyTaken, StoredKey, find_key
from db.players import player_secret_matches
from db.recognitions import (
    Accepted,
    NewRecognition,
    PlayerNotProven,
    get_recognition,
    insert_recognition,
)

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


def _parse(settings: Any, key: str) -> tuple[NewRecognition, bytes]:
    """The doodle and the body it came in (the Idempotency-Key's fingerprint needs it)."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        data = read_body(request, settings.max_body_bytes)
        return parse_json_recognition(data, request.args.to_dict(), settings, key), data
    if mimetype == "image/png":
        data = read_body(request, settings.max_body_bytes)
        return parse_png_recognition(data, request.args.to_dict(), key), data
    raise UnsupportedMediaType(
        "send the drawing as application/json strokes or an image/png",
        {"content_type": request.content_type},
    )


# The same answer whether the player is unknown or the secret missing or wrong: it never
# tells whether an id exists.
PLAYER_UNPROVEN = "player_id needs the player's X-Player-Secret"


def _player_unproven() -> Unauthorized:
    admit_attempt(False)  # counted as a failed authentication of this address
    g.player_challenge = True
    return Unauthorized(PLAYER_UNPROVEN, {"field": "X-Player-Secret"})


@bp.after_request
def _challenge(response: Response) -> Response:
    if response.status_code == 401 and g.get("player_challenge"):
        response.headers["WWW-Authenticate"] = 'ApiKey header="X-Player-Secret"'
    return response


@bp.post("")
def create() -> Response:
    res = resources()
    settings = res.settings
    key = require_client_key(settings.client_keys, "recognitions", settings.rate_recognitions)
    new, body = _parse(settings, key)
    claim = requested_claim(settings, "createRecognition", body)
    if new.player_id is not None:
        new = replace(new, player_secret=request.headers.get("X-Player-Secret") or None)
    for _ in range(2):  # a key that expires or goes between the two statements: again
        try:
            with res.autocommit.connect() as conn:
                accepted = insert_recognition(conn, new, claim)
        except PlayerNotProven:
            raise _player_unproven() from None
        except KeyTaken:
            assert claim is not None
            with res.autocommit.connect() as conn:
                stored = find_key(conn, key, claim.key, claim.ttl_hours)
            if stored is not None:
                check_same_request(stored, claim)
                return mark_replayed(_replay(stored, new))
            continue
        return _publish(res, new, accepted)
    raise Conflict("the Idempotency-Key changed hands meanwhile; send the request again", {})


def _publish(res: Any, new: NewRecognition, accepted: Accepted) -> Response:
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
    return _answer(document, accepted=True)


def _replay(stored: StoredKey, new: NewRecognition) -> Response:
    """The recognition the key made, as it is now; its player's secret is asked again."""
    with resources().sessions() as s:
        row = get_recognition(s, stored.recognition_id) if stored.recognition_id else None
        if row is None:  # removed since (erasure, retention): as if it never was
            raise NotFound("no such recognition", {})
        if row.player_id is not None and not player_secret_matches(
            s, row.player_id, new.player_secret
        ):
            raise _player_unproven()
        document = recognition_json(row)
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
