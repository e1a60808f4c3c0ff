"""`POST /v1/guesses`: what the model sees in the strokes drawn so far (live, never stored).

A client sends one every few hundred milliseconds while the player draws. Guesses go to
the workers on a queue of their own, which workers serve first, and are shed (429) when
they or stored recognitions are backing up: a guess is worth less than a stored doodle.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify, request

from api.auth import require_client_key
from api.contract.parsing import read_body
from api.errors import InvalidRequest, ServiceUnavailable, TooManyRequests, UnsupportedMediaType
from api.resources import resources
from api.schemas import parse_json_guess
from api.waiting import publish_and_wait
from core.tasks import (
    GUESS_QUEUE,
    QUEUE,
    RECOGNITION_WAIT_KEY,
    guess_channel,
    guess_message,
)

bp = Blueprint("guesses", __name__, url_prefix="/v1/guesses")


def _shed_if_busy() -> None:
    """429 while guesses wait in the broker beyond their limit, or stored recognitions wait
    (in the broker, or for a worker) longer than theirs."""
    res = resources()
    pipe = res.redis.pipeline(transaction=False)
    pipe.llen(GUESS_QUEUE)
    pipe.llen(QUEUE)
    pipe.get(RECOGNITION_WAIT_KEY)
    guesses, recognitions, wait = pipe.execute()
    recognition_wait_ms = float(wait or 0)
    settings = res.settings
    if (
        guesses > settings.guess_max_queue
        or recognitions > settings.guess_shed_backlog
        or recognition_wait_ms > settings.guess_shed_wait_ms
    ):
        raise TooManyRequests(
            "the recognisers are busy; live guesses are paused, try again shortly",
            {
                "queued_guesses": guesses,
                "queued_recognitions": recognitions,
                "recognition_wait_ms": recognition_wait_ms,
            },
        )


@bp.post("")
def create() -> Response:
    res = resources()
    require_client_key(res.settings.client_keys, "guesses", res.settings.rate_guesses)
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            "send the strokes drawn so far as application/json",
            {"content_type": request.content_type},
        )
    drawing = parse_json_guess(read_body(request, res.settings.max_body_bytes), res.settings)
    _shed_if_busy()
    guess_id = uuid.uuid4().hex
    timeout = res.settings.guess_timeout_seconds
    message = guess_message(guess_id, drawing, timeout)
    answer = publish_and_wait(res.redis, GUESS_QUEUE, message, guess_channel(guess_id), timeout)
    if answer is None:
        raise ServiceUnavailable("no recogniser answered in time", {"timeout_s": timeout})
    if "error" in answer:
        raise InvalidRequest(str(answer["error"]), {"field": "drawing"})
    return jsonify(answer)
