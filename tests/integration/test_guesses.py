"""POST /v1/guesses against real Redis: validation, shedding, timeouts, and the worker's
answer handed back through Redis (a stand-in thread plays the guess worker)."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace

import pytest

from core.tasks import GUESS_QUEUE, QUEUE, RECOGNITION_WAIT_KEY
from tests.fixtures.app import CLIENT_KEY, assert_error
from workers.guess import GuessRequest, guess_batch

HEADERS = {"X-API-Key": CLIENT_KEY}


def _guess(client, body, headers=HEADERS):
    return client.post(
        "/v1/guesses", data=json.dumps(body), headers=headers, content_type="application/json"
    )


def _serve_one_guess(redis_client, worker_runtime) -> threading.Thread:
    """Pop the next guess message off the broker's list and answer it, as a worker would."""

    def work() -> None:
        popped = redis_client.brpop([GUESS_QUEUE], timeout=5)
        assert popped is not None
        envelope = json.loads(popped[1])
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        guess_batch(worker_runtime, [GuessRequest(*args)])

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_a_partial_drawing_gets_the_models_best_guesses(
    client, redis_client, worker_runtime, sample_drawings, seed_version
):
    strokes = sample_drawings["star"][0]["drawing"]
    thread = _serve_one_guess(redis_client, worker_runtime)
    response = _guess(client, {"drawing": strokes})
    thread.join()
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["model_version"] == seed_version
    assert body["guesses"][0]["label"] == "star"
    assert len(body["guesses"]) == 3
    assert body["guesses"][0]["confidence"] >= body["guesses"][1]["confidence"]
    # Nothing about a guess is stored.
    assert redis_client.keys("doodle:guess:*") == []


def test_guesses_are_shed_when_the_workers_are_busy(client, redis_client, settings, apple_drawing):
    redis_client.rpush(GUESS_QUEUE, *[b"x"] * (settings.guess_max_queue + 1))
    response = _guess(client, {"drawing": apple_drawing})
    assert_error(response, 429, "too_many_requests")
    assert response.headers["Retry-After"] == "1"
    redis_client.delete(GUESS_QUEUE)
    # A backlog of stored recognitions sheds guesses too: they come first.
    redis_client.rpush(QUEUE, *[b"x"] * (settings.guess_shed_backlog + 1))
    assert_error(_guess(client, {"drawing": apple_drawing}), 429, "too_many_requests")
    redis_client.delete(QUEUE)
    # So do stored recognitions that wait too long for a worker (the workers say so).
    redis_client.set(RECOGNITION_WAIT_KEY, settings.guess_shed_wait_ms + 1)
    error = assert_error(_guess(client, {"drawing": apple_drawing}), 429, "too_many_requests")
    assert error["details"]["recognition_wait_ms"] > settings.guess_shed_wait_ms
    assert redis_client.llen(GUESS_QUEUE) == 0  # nothing was queued
    assert redis_client.keys("doodle:guess:*") == []  # nor left behind


def test_no_worker_in_time_is_503_with_retry_after(app, client, apple_drawing):
    from api.resources import EXTENSION

    resources = app.extensions[EXTENSION]
    resources.settings = replace(resources.settings, guess_timeout_seconds=0.2)
    response = _guess(client, {"drawing": apple_drawing})
    assert_error(response, 503, "unavailable")
    assert response.headers["Retry-After"]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"drawing": [[[1], [1]]]}, HEADERS, 400),
        ({"drawing": [[[0, 9], [0, 9]]], "word": "star"}, HEADERS, 400),
        ({}, HEADERS, 400),
        ({"drawing": [[[0, 9], [0, 9]]]}, {}, 401),
        ({"drawing": [[[0, 9], [0, 9]]]}, {"X-API-Key": "nope"}, 401),
    ],
)
def test_bad_guess_requests_are_refused(client, redis_client, body, headers, status):
    assert_error(_guess(client, body, headers), status)
    assert redis_client.llen(GUESS_QUEUE) == 0


def test_guesses_take_json_only(client):
    response = client.post(
        "/v1/guesses", data=b"\x89PNG", headers=HEADERS, content_type="image/png"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_a_guess_nobody_waits_for_any_more_is_skipped(redis_client, worker_runtime, seed_version):
    late = GuessRequest("late", [[[0, 9], [0, 9]]], deadline=0.0)
    assert guess_batch(worker_runtime, [late]) == 0
    assert redis_client.llen("doodle:guess:late") == 0


@pytest.fixture
def apple_drawing(sample_drawings) -> list:
    return sample_drawings["apple"][0]["drawing"]
