"""Recognitions taken off the real Redis list in batches (workers.consumer)."""

from __future__ import annotations

import threading
import time
import uuid

import redis
from redis.exceptions import RedisError

from cli.services import celery_queues
from core.tasks import (
    GUESS_QUEUE,
    IDLE_QUEUE,
    MAINTENANCE_QUEUE,
    QUEUE,
    enqueue_guess,
    enqueue_recognition,
)
from workers import consumer
from workers.consumer import BatchConsumer, pop_batch
from workers.guess import guess_requests
from workers.recognize import recognition_ids
from workers.tasks import make_worker_app


def test_a_batch_is_what_waits_oldest_first_up_to_its_size(redis_client: redis.Redis):
    ids = [uuid.uuid4() for _ in range(5)]
    for rid in ids:
        enqueue_recognition(redis_client, rid, f"req-{rid}")

    first = recognition_ids(pop_batch(redis_client, QUEUE, 3))
    rest = recognition_ids(pop_batch(redis_client, QUEUE, 3))

    assert list(first) == ids[:3]
    assert list(rest) == ids[3:]
    assert first[ids[0]] == f"req-{ids[0]}"
    assert redis_client.llen(QUEUE) == 0


def test_an_empty_queue_blocks_for_the_next_message(redis_client: redis.Redis):
    rid = uuid.uuid4()
    sender = threading.Timer(0.3, enqueue_recognition, (redis_client, rid))
    sender.start()
    started = time.monotonic()
    batch = pop_batch(redis_client, QUEUE, 8)
    waited = time.monotonic() - started

    assert list(recognition_ids(batch)) == [rid]
    assert 0.2 < waited < consumer.BLOCK_SECONDS + 0.5


def test_nothing_arriving_gives_an_empty_batch(redis_client: redis.Redis):
    assert pop_batch(redis_client, QUEUE, 8) == []


def test_malformed_messages_are_dropped_and_duplicates_merged(redis_client: redis.Redis):
    rid = uuid.uuid4()
    enqueue_recognition(redis_client, rid)
    enqueue_recognition(redis_client, rid, "req-2")
    redis_client.lpush(QUEUE, b"not a task message")
    ids = recognition_ids(pop_batch(redis_client, QUEUE, 8))
    assert ids == {rid: "req-2"}


def test_guess_messages_carry_their_strokes_and_deadline(redis_client: redis.Redis):
    drawing = [[[0, 10, 20], [0, 10, 0]]]
    enqueue_guess(redis_client, "g1", drawing, timeout=1.0)
    redis_client.lpush(GUESS_QUEUE, b'{"body": "not base64 json"}')
    (guess,) = guess_requests(pop_batch(redis_client, GUESS_QUEUE, 8))
    assert (guess.id, guess.drawing) == ("g1", drawing)
    assert time.time() < guess.deadline <= time.time() + 1.0


def test_stopping_finishes_the_batch_in_hand(redis_client: redis.Redis):
    handled: list[list[bytes]] = []
    in_hand = threading.Event()

    def slow_handle(batch: list[bytes]) -> None:
        in_hand.set()
        time.sleep(0.5)
        handled.append(batch)

    enqueue_recognition(redis_client, uuid.uuid4())
    enqueue_recognition(redis_client, uuid.uuid4())
    running = BatchConsumer(redis_client, QUEUE, 8, slow_handle, lambda exc: None)
    running.start()
    assert in_hand.wait(5)
    running.stop(timeout=5)

    assert [len(b) for b in handled] == [2]  # the batch in hand was finished, not dropped
    enqueue_recognition(redis_client, uuid.uuid4())
    time.sleep(0.2)
    assert redis_client.llen(QUEUE) == 1  # a stopped consumer takes nothing more


def test_a_failing_batch_does_not_stop_the_consumer(redis_client: redis.Redis):
    seen: list[int] = []

    def handle(batch: list[bytes]) -> None:
        seen.append(len(batch))
        if len(seen) == 1:
            raise RuntimeError("a bug in one batch")

    running = BatchConsumer(redis_client, QUEUE, 1, handle, lambda exc: None)
    running.start()
    try:
        for _ in range(2):
            enqueue_recognition(redis_client, uuid.uuid4())
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        running.stop(timeout=5)
    assert seen == [1, 1]


def test_a_broker_outage_is_reported_not_fatal():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    errors: list[BaseException] = []

    def failed(exc: BaseException) -> None:
        errors.append(exc)
        time.sleep(0.05)

    running = BatchConsumer(dead, QUEUE, 8, lambda batch: None, failed)
    running.start()
    deadline = time.monotonic() + 5
    while len(errors) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    running.stop(timeout=5)
    assert len(errors) >= 2 and all(isinstance(e, RedisError) for e in errors)


def test_a_worker_of_both_batch_queues_runs_a_consumer_step_for_each(settings):
    app = make_worker_app(settings, [QUEUE, GUESS_QUEUE])
    try:
        names = {step.name for step in app.steps["worker"]}
    finally:
        app.close()
    assert {f"doodle.consume.{QUEUE}", f"doodle.consume.{GUESS_QUEUE}"} <= names


def test_celery_never_consumes_the_batch_queues():
    assert celery_queues([GUESS_QUEUE, QUEUE, MAINTENANCE_QUEUE]) == [MAINTENANCE_QUEUE]
    assert celery_queues([GUESS_QUEUE]) == [IDLE_QUEUE]  # the guesser runs no sweeps
    assert celery_queues([QUEUE]) == [IDLE_QUEUE]
