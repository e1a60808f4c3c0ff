"""X-Request-ID: answered back, and carried by the task message to the worker's log lines."""

from __future__ import annotations

import base64
import json
import logging
import re

import redis

from core.tasks import QUEUE
from db import recognitions as rec
from db.models import InputFormat
from db.players import create_player
from tests.fixtures.app import CLIENT_KEY
from workers.recognize import recognize_batch

HEADERS = {"X-API-Key": CLIENT_KEY}
SQUARE = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]


def _message_args(redis_client: redis.Redis) -> list:
    raw = redis_client.rpop(QUEUE)
    assert raw is not None
    return json.loads(base64.b64decode(json.loads(raw)["body"]))[0]


def test_a_sent_request_id_is_answered_and_sent_to_the_worker(client, redis_client):
    response = client.post(
        "/v1/recognitions",
        json={"drawing": SQUARE},
        headers={**HEADERS, "X-Request-ID": "game-42.a:b"},
    )
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "game-42.a:b"
    assert _message_args(redis_client) == [response.get_json()["id"], "game-42.a:b"]


def test_a_missing_or_odd_request_id_gets_a_new_one(client, redis_client):
    for sent in (None, "x" * 65, "two words", "semi;colon", "é"):
        headers = dict(HEADERS) if sent is None else {**HEADERS, "X-Request-ID": sent}
        response = client.post("/v1/recognitions", json={"drawing": SQUARE}, headers=headers)
        assert response.status_code == 202
        answered = response.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", answered), answered
        assert _message_args(redis_client)[1] == answered
    # Errors name their request too, and no request inherits another's id.
    first = client.get("/v1/recognitions/nope", headers=HEADERS)
    second = client.get("/v1/recognitions/nope", headers=HEADERS)
    assert first.status_code == second.status_code == 404
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_the_worker_logs_a_failed_doodle_with_its_request_id(
    worker_runtime, db_session_factory, seed_version, caplog
):
    # A drawing the API would refuse (see test_durability), slipped in beside the API.
    with db_session_factory.begin() as s:
        player = create_player(s, "player-secret-7")
        new = rec.NewRecognition(
            input_format=InputFormat.simplified,
            payload=[[["x", "y"], [1, 2]]],
            player_id=player.id,
            player_secret=player.secret,
        )
        rid = rec.insert_recognition(s, new).id
    with caplog.at_level(logging.DEBUG, logger="workers.recognize"):
        report = recognize_batch(worker_runtime, [rid], request_ids={rid: "req-failing-1"})
    assert report.failed == 1
    lines = [r for r in caplog.records if str(rid) in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING, caplog.text
    assert lines[0].request_id == "req-failing-1"  # type: ignore[attr-defined]
    assert "player-secret-7" not in caplog.text and "'x'" not in caplog.text
