"""Erasure (Art. 17): `DELETE /v1/players/<id>` asks for it, `GET /v1/erasures/<id>` polls
it. The work is a worker's (the doodle.erase task, see services.erasure).

- DELETE answers 202 with `Location: /v1/erasures/<id>` while the request is pending (a
  second DELETE meanwhile answers the same request), and 200 with the receipt once the
  player is erased: an admin asking again gets the receipt of the last erasure. The player
  proves who they are with their secret (only while they exist), or an admin acts for them
  (audited).
- GET needs no credential: the request's id is random (122 bits) and the answer holds
  no personal data (the player is a keyed hash), so whoever was handed the Location
  (the player, after their secret stopped existing) can follow it to the receipt.
"""

from __future__ import annotations

import logging
import uuid

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError

from api.auth import require_admin_token, require_player
from api.errors import NotFound
from api.resources import resources
from core.tasks import enqueue_erasure
from services import erasure
from services.errors import UnknownErasure, UnknownPlayer

log = logging.getLogger(__name__)

bp = Blueprint("erasures", __name__)

MAX_PLAYER_ID = 64


def _answer(state: erasure.Erasure) -> Response:
    response = jsonify(state.document())
    response.status_code = 200 if state.done else 202
    response.headers["Location"] = f"/v1/erasures/{state.public_id}"
    return response


@bp.delete("/v1/players/<player_id>")
def erase_player(player_id: str) -> Response:
    res = resources()
    try:
        requested_by = require_player(player_id, "player.erase").name
    except NotFound:
        # An admin (the token was checked) asking for a player who is gone: erased
        # already (the receipt), or never known (404 below).
        requested_by = f"admin:{require_admin_token()}"
    if not (0 < len(player_id) <= MAX_PLAYER_ID) or not player_id.isprintable():
        raise NotFound("no such player", {})
    try:
        requested = erasure.request_erasure(res, player_id, requested_by)
    except UnknownPlayer:
        raise NotFound("no such player", {}) from None
    state = requested.erasure
    if not state.done:
        try:
            enqueue_erasure(res.redis, state.public_id)
        except RedisError as exc:
            # The request is recorded: the sweeper sends it once Redis is back.
            log.warning("erasure %s left for the sweeper: %s", state.public_id, type(exc).__name__)
    return _answer(state)


@bp.get("/v1/erasures/<erasure_id>")
def read_erasure(erasure_id: str) -> Response:
    try:
        public_id = uuid.UUID(erasure_id)
        state = erasure.get_erasure(resources(), public_id)
    except (ValueError, UnknownErasure):
        raise NotFound("no such erasure", {}) from None
    response = jsonify(state.document())
    response.headers["Location"] = f"/v1/erasures/{state.public_id}"
    return response
