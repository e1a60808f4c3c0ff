"""`POST /v1/guesses`: what the model sees in the strokes drawn so far (live, never stored).

A client sends one every few hundred milliseconds while the player draws. Guesses go to
the workers on a queue of their own, which workers serve first, and are shed (429) when
they or stored recognitions are backing up: a guess is worth less than a stored doodle.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import require_client_key
from api.contract.parsing import read_body
from api.errors import InvalidRequest, ServiceUnavailable, TooManyRequests, UnsupportedMediaType
from api.resources import resources
from api.schemas import parse_json_guess
from api.waiting import popped_result
from core.tasks import (
    GUESS_QUEUE,
    QUEUE,
    RECOGNITION_WAIT_KEY,
    RESULT_TTL_SECONDS,
    guess_channel,
    guess_message,
)

bp = Blueprint("guesses", __name__, url_prefix="/v1/guesses")


# Shed or publish, in Redis, in the same round trip as the wait: while guesses wait in the
# broker beyond their limit, or stored recognitions wait (in the broker, or for a worker)
# longer than theirs, the guess is not queued and a "shed" note goes to its own result list,
# which the waiting pop takes at once. KEYS: the guess queue, the recognition queue, the
# recognitions' wait, the guess's result list. ARGV: the three limits, the task message,
# the result list's TTL.
_SHED_OR_PUBLISH = """
local guesses = redis.call('LLEN', KEYS[1])
local recognitions = redis.call('LLEN', KEYS[2])
local wait = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if guesses > tonumber(ARGV[1]) or recognitions > tonumber(ARGV[2])
        or wait > tonumber(ARGV[3]) then
    redis.call('RPUSH', KEYS[4], cjson.encode({shed = {guesses, recognitions, tostring(wait)}}))
    redis.call('EXPIRE', KEYS[4], ARGV[5])
    return 1
end
redis.call('LPUSH', KEYS[1], ARGV[4])
return 0
"""


def _shed_or_publish_and_wait(
    guess_id: str, message: bytes, timeout: float
) -> dict[str, Any] | None:
    """The worker's answer (None if none came in time); 429 if the guess was shed."""
    res = resources()
    settings = res.settings
    channel = guess_channel(guess_id)
    pipe = res.redis.pipeline(transaction=False)
    pipe.eval(
        _SHED_OR_PUBLISH,
        4,
        GUESS_QUEUE,
        QUEUE,
        RECOGNITION_WAIT_KEY,
        channel,
        settings.guess_max_queue,
        settings.guess_shed_backlog,
        settings.guess_shed_wait_ms,
        message,
        RESULT_TTL_SECONDS,
    )
    pipe.blpop([channel], timeout=timeout)
    _, popped = pipe.execute()
    answer = popped_result(popped)
    if answer is not None and "shed" in answer:
        guesses, recognitions, wait = answer["shed"]
        raise TooManyRequests(
            "the recognisers are busy; live guesses are paused, try again shortly",
            {
                "queued_guesses": guesses,
                "queued_recognitions": recognitions,
                "recognition_wait_ms": float(wait),
            },
        )
    return answer


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
    guess_id = uuid.uuid4().hex
    timeout = res.settings.guess_timeout_seconds
    message = guess_message(guess_id, drawing, timeout)
    answer = _shed_or_publish_and_wait(guess_id, message, timeout)
    if answer is None:
        raise ServiceUnavailable("no recogniser answered in time", {"timeout_s": timeout})
    if "error" in answer:
        raise InvalidRequest(str(answer["error"]), {"field": "drawing"})
    return jsonify(answer)
