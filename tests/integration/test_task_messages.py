"""The task messages the API builds by hand are the ones Celery would send: same envelope,
same headers and body, readable by kombu from the real Redis broker."""

from __future__ import annotations

import base64
import json
import uuid

import redis

from core.settings import Settings
from core.tasks import GUESS_QUEUE, QUEUE, RECOGNIZE, enqueue_guess, enqueue_recognition
from workers.celery_app import make_celery

# Differ on every message, or name the sending process.
_UNIQUE_HEADERS = {"id", "root_id", "origin"}
_UNIQUE_PROPERTIES = {"correlation_id", "delivery_tag", "reply_to"}


def _pop(client: redis.Redis, queue: str) -> dict:
    raw = client.rpop(queue)
    assert raw is not None, f"nothing on {queue}"
    return json.loads(raw)


def test_a_recognition_message_matches_celerys(settings: Settings, redis_client: redis.Redis):
    rid = uuid.uuid4()
    celery = make_celery(settings)
    try:
        celery.send_task(RECOGNIZE, args=[str(rid)], queue=QUEUE, ignore_result=True)
    finally:
        celery.close()
    enqueue_recognition(redis_client, rid)
    theirs, ours = _pop(redis_client, QUEUE), _pop(redis_client, QUEUE)

    assert set(ours) == set(theirs)
    for field in ("content-type", "content-encoding"):
        assert ours[field] == theirs[field]
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
    assert json.loads(base64.b64decode(ours["body"]))[0] == [str(rid)]
    assert set(ours["headers"]) == set(theirs["headers"])
    for key in set(theirs["headers"]) - _UNIQUE_HEADERS:
        assert ours["headers"][key] == theirs["headers"][key], key
    assert ours["headers"]["id"] == ours["headers"]["root_id"]
    assert set(ours["properties"]) == set(theirs["properties"]) - {"reply_to"}
    for key in set(ours["properties"]) - _UNIQUE_PROPERTIES:
        assert ours["properties"][key] == theirs["properties"][key], key
    assert ours["properties"]["correlation_id"] == ours["headers"]["id"]


def test_kombu_reads_a_guess_message(settings: Settings, redis_client: redis.Redis):
    drawing = [[[0, 10, 20], [0, 10, 0]]]
    enqueue_guess(redis_client, "g1", drawing, timeout=1.0)
    celery = make_celery(settings)
    try:
        with celery.connection_for_read() as conn:
            queue = conn.SimpleQueue(GUESS_QUEUE)
            message = queue.get(timeout=2)
            message.ack()
            queue.close()
    finally:
        celery.close()
    assert message.headers["task"] == "doodle.guess"
    args, kwargs, _ = message.decode()
    assert args[:2] == ["g1", drawing] and kwargs == {}
    assert isinstance(args[2], float)
