"""Recognitions and live guesses in micro-batches straight off the broker's lists: a
Celery worker step.

Celery hands a worker one message per turn of its event loop, and celery-batches then
waited on a clock for a batch to fill: measured here, that cost about 0.6 ms of a worker's
CPU a doodle and 2-3 ms of a lone doodle's latency. This step pops what is waiting on its
list, up to `batch_size` messages in one round trip (blocking only when the list is
empty), and hands them on as one batch at once: alone, a doodle waits for nobody; under
load, batches fill with whatever queued up meanwhile.

The messages stay Celery task messages (core.tasks), read from the list kombu's Redis
transport uses. A message leaves Redis when popped: the Postgres row, not the message, is
the record of work, and the sweeper resends what a killed worker held. A worker that is
told to stop finishes the batch in hand first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import redis
from celery import bootsteps
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# How long one blocking pop waits for a message: also how long a stop may wait for it.
BLOCK_SECONDS = 1


def pop_batch(client: redis.Redis, queue: str, size: int) -> list[bytes]:
    """Up to `size` messages, oldest first: what is waiting, in one round trip, or, with
    nothing waiting, the next to arrive within BLOCK_SECONDS (else [])."""
    # kombu's Redis transport LPUSHes and pops from the right: the right end is the oldest.
    waiting: Any = client.rpop(queue, size)
    if waiting:
        return list(waiting)
    popped: Any = client.brpop([queue], timeout=BLOCK_SECONDS)
    if popped is None:
        return []
    rest: Any = client.rpop(queue, size - 1) if size > 1 else None
    return [popped[1], *(rest or [])]


class Liveness(Protocol):
    """What the consumer tells the API about itself (workers.metrics.ConsumerBeat)."""

    def beat(self) -> None: ...

    def stop(self) -> None: ...


class _Silent:
    def beat(self) -> None:
        pass

    def stop(self) -> None:
        pass


class BatchConsumer:
    """A thread that pops batches off `queue` and hands each to `handle` until stopped.
    Each turn of its loop beats `liveness`: only a consumer that turns counts as alive."""

    def __init__(
        self,
        client: redis.Redis,
        queue: str,
        size: int,
        handle: Callable[[list[bytes]], None],
        on_broker_error: Callable[[BaseException], None],
        liveness: Liveness | None = None,
    ) -> None:
        self._client = client
        self._queue = queue
        self._size = size
        self._handle = handle
        self._on_broker_error = on_broker_error
        self._liveness = liveness or _Silent()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"consume-{queue}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop taking messages; wait for the batch in hand to be finished."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the %s consumer did not stop within %.0fs", self._queue, timeout)

    def _run(self) -> None:
        try:
            self._consume()
        finally:
            self._liveness.stop()

    def _consume(self) -> None:
        while not self._stop.is_set():
            self._liveness.beat()
            try:
                batch = pop_batch(self._client, self._queue, self._size)
            except RedisError as exc:
                self._on_broker_error(exc)  # backs off: Redis is down, nothing was taken
                continue
            if not batch:
                continue
            try:
                self._handle(batch)
            except Exception:
                # The doodles stay in Postgres for the sweeper; the consumer lives on.
                log.exception("a batch of %d %s failed", len(batch), self._queue)


def consumer_step(
    queue: str, make_consumer: Callable[[], BatchConsumer], stop_timeout: float
) -> type:
    """A worker bootstep running the consumer of `queue` that `make_consumer` builds, after
    the pool is up (so no pool process is forked from a process with the consumer's thread
    in it)."""

    class BatchConsumerStep(bootsteps.StartStopStep):
        # Celery knows steps by name: one a queue, or a second consumer would replace the first.
        name = f"doodle.consume.{queue}"
        requires = ("celery.worker.components:Pool",)
        label = f"{queue} consumer"

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.consumer: BatchConsumer | None = None

        def start(self, parent: Any) -> None:
            self.consumer = make_consumer()
            self.consumer.start()

        def stop(self, parent: Any) -> None:
            if self.consumer is not None:
                self.consumer.stop(stop_timeout)
                self.consumer = None

        shutdown = stop

    return BatchConsumerStep
