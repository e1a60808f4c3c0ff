"""`/readyz` wants a live worker on each batch queue: the API in-process, batch consumers
(workers.consumer with their beats) as threads on the real Redis. With real worker
processes, killed without a goodbye: tests/e2e/test_readiness.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import redis
from flask.testing import FlaskClient

from core.settings import Settings
from core.tasks import GUESS_QUEUE, QUEUE
from workers.consumer import BatchConsumer
from workers.metrics import ConsumerBeat, consumer_ttl_ms

BEAT_SECONDS = 0.2  # keys live three beats, or three idle turns (consumer_ttl_ms)
WAIT_SECONDS = 10.0  # a bound for a busy machine, never a figure the test asserts


@pytest.fixture
def beat_settings(settings: Settings) -> Settings:
    return replace(settings, worker_heartbeat_seconds=BEAT_SECONDS)


@pytest.fixture
def api(beat_settings: Settings, seed_version: int) -> Iterator[FlaskClient]:
    from api import create_app

    app = create_app(beat_settings)  # ready_min_workers: the default
    yield app.test_client()
    app.extensions["doodle"].close()


@pytest.fixture
def consumers(beat_settings: Settings) -> Iterator[Callable[..., BatchConsumer]]:
    """Starts batch consumers as a worker does (each with its ConsumerBeat); stops them all."""
    started: list[BatchConsumer] = []
    clients: list[redis.Redis] = []

    def start(queue: str, handle: Callable[[list[bytes]], None] = lambda _: None) -> BatchConsumer:
        client = redis.Redis.from_url(beat_settings.broker_url)
        clients.append(client)
        consumer = BatchConsumer(
            client, queue, 8, handle, lambda exc: None, ConsumerBeat(client, queue, beat_settings)
        )
        consumer.start()
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop(timeout=5)
    for client in clients:
        client.close()


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS}s: {what}"
        time.sleep(0.02)


def _status(api: FlaskClient) -> int:
    return api.get("/readyz").status_code


def _not_ready_for(api: FlaskClient, *queues: str) -> dict:
    """A 503 that says which queues lack a worker, and when to ask again."""
    response = api.get("/readyz")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    body = response.get_json()
    workers = body["checks"]["workers"]
    assert workers["ok"] is False
    for queue in (QUEUE, GUESS_QUEUE):
        named = f"no live worker consumes the {queue} queue" in body["reason"]
        assert named == (queue in queues), body["reason"]
        assert (workers["queues"][queue] == 0) == (queue in queues), workers
    return body


def test_ready_only_while_a_live_worker_consumes_each_batch_queue(api, consumers):
    _not_ready_for(api, QUEUE, GUESS_QUEUE)
    assert api.get("/healthz").status_code == 200  # liveness knows nothing of workers

    consumers(QUEUE)
    _until(lambda: "recognitions" not in api.get("/readyz").get_json()["reason"], "a beat")
    _not_ready_for(api, GUESS_QUEUE)

    guesser = consumers(GUESS_QUEUE)
    _until(lambda: _status(api) == 200, "ready with both queues consumed")
    ready = api.get("/readyz").get_json()
    assert ready["status"] == "ready" and "reason" not in ready
    assert ready["checks"]["workers"]["queues"] == {QUEUE: 1, GUESS_QUEUE: 1}

    guesser.stop(timeout=5)  # a graceful stop says so at once: no wait for the key to expire
    _not_ready_for(api, GUESS_QUEUE)


def test_a_consumer_that_stops_turning_stops_counting_within_its_beats(
    api, consumers, beat_settings, redis_client
):
    """A consumer stuck in a batch (or killed, which beats no more either) counts until its
    key expires."""
    release = threading.Event()
    consumers(QUEUE)
    consumers(GUESS_QUEUE, lambda batch: release.wait(WAIT_SECONDS * 2))
    try:
        _until(lambda: _status(api) == 200, "ready with both queues consumed")
        key = next(redis_client.scan_iter(match=f"doodle:consumer:{GUESS_QUEUE}:*"))
        assert 0 < redis_client.pttl(key) <= consumer_ttl_ms(beat_settings)

        redis_client.lpush(GUESS_QUEUE, b"a message the handler never finishes")
        _until(lambda: _status(api) == 503, "the stuck consumer's key expired")
        _not_ready_for(api, GUESS_QUEUE)
    finally:
        release.set()
    # Turning again, it counts again.
    _until(lambda: _status(api) == 200, "ready once the consumer turns again")


def test_zero_required_workers_turns_the_check_off(settings, seed_version):
    from api import create_app

    app = create_app(replace(settings, ready_min_workers=0))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 200, response.get_data(as_text=True)
        workers = response.get_json()["checks"]["workers"]
        assert workers == {
            "ok": True,
            "alive": 0,
            "required": 0,
            "queues": {QUEUE: 0, GUESS_QUEUE: 0},
        }
    finally:
        app.extensions["doodle"].close()
