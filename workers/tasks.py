"""The worker's Celery app, built from Settings.

Recognitions and live guesses are taken off their queues in micro-batches by worker
steps of their own (`workers.consumer`); the sweeper and erasures are plain tasks. A
message leaves Redis when it is read (no ack emulation, see workers.celery_app): for a
recognition, the row in Postgres, not the message, is the record of work, and the
sweeper resends what a dead worker held; a guess is never retried.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection

import torch
from celery import Celery
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from core.settings import Settings
from core.storage import StorageError
from core.tasks import ERASE, GUESS_QUEUE, MAINTENANCE_QUEUE, QUEUE, SWEEP, enqueue_recognition
from services.erasure import work_erasure
from services.erasure_scrub import scrub_erased_data
from workers.celery_app import make_celery
from workers.consumer import BatchConsumer, consumer_step
from workers.guess import guess_batch, guess_requests
from workers.metrics import ConsumerBeat, Heartbeat, started_heartbeat
from workers.model_cache import NoModel
from workers.per_process import PerProcess
from workers.recognize import recognition_ids, recognize_batch, sweep
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# Infrastructure that is down: the work waits (in Postgres) and is resent; never counted.
TRANSIENT = (OperationalError, RedisError, StorageError, NoModel, ConnectionError)
MAX_BACKOFF_SECONDS = 5.0
# How long before an erasure's scrub that left something over is asked again.
SCRUB_RETRY_SECONDS = 60


class Backoff:
    """Slows a process down while its infrastructure is failing, so it does not spin."""

    def __init__(self) -> None:
        self.delay = 0.0

    def failed(self, what: str, exc: BaseException) -> None:
        self.delay = min(max(self.delay * 2, 0.1), MAX_BACKOFF_SECONDS)
        log.warning("%s: %s: %s; waiting %.1fs", what, type(exc).__name__, exc, self.delay)
        time.sleep(self.delay)

    def succeeded(self) -> None:
        self.delay = 0.0


def make_worker_app(settings: Settings, batch_queues: Collection[str] = ()) -> Celery:
    """The worker's app. A worker started from it also takes the `batch_queues` among
    recognitions and live guesses off their lists in batches (workers.consumer); Celery
    itself must not consume those queues then (cli.services.celery_queues)."""
    app = make_celery(settings)
    runtimes = PerProcess(lambda: WorkerRuntime(settings), WorkerRuntime.close)
    heartbeats = PerProcess(lambda: started_heartbeat(settings), Heartbeat.stop)

    @worker_process_init.connect(weak=False)
    def _fresh_process(**_: object) -> None:
        # A forked pool process must not reuse the parent's connections.
        runtimes.reset()
        # Parallelism comes from the pool's processes; torch threads would only contend.
        torch.set_num_threads(1)
        # A heartbeat per process that runs tasks (solo: the worker itself; prefork: each child).
        heartbeats.get()

    @worker_ready.connect(weak=False)
    def _ready(sender: object = None, **_: object) -> None:
        # The threads pool sends no worker_process_init; a prefork parent runs no tasks.
        if not isinstance(getattr(sender, "pool", None), PreforkPool):
            heartbeats.get()

    @worker_process_shutdown.connect(weak=False)
    def _close_process(**_: object) -> None:
        heartbeats.reset()
        runtimes.reset()

    @worker_shutdown.connect(weak=False)
    def _stop_heartbeat(**_: object) -> None:
        heartbeats.reset()

    def recognize_messages(messages: list[bytes], backoff: Backoff) -> None:
        ids = recognition_ids(messages)
        if not ids:
            return
        try:
            report = recognize_batch(runtimes.get(), list(ids), request_ids=ids)
        except TRANSIENT as exc:
            backoff.failed(f"batch of {len(ids)} recognitions left for the sweeper", exc)
            return
        backoff.succeeded()
        # One line a batch, naming the requests behind it (grep a request id to find it).
        log.info(
            "batch of %d: %d done, %d failed, %d skipped",
            len(ids),
            report.done,
            report.failed,
            report.skipped,
            extra={"request_ids": sorted(r for r in ids.values() if r)},
        )

    def guess_messages(messages: list[bytes], backoff: Backoff) -> None:
        guesses = guess_requests(messages)
        try:
            guess_batch(runtimes.get(), guesses)
        except TRANSIENT as exc:
            # The waiting requests time out and answer 503; guesses are never retried.
            backoff.failed(f"{len(guesses)} guesses dropped", exc)
            return
        backoff.succeeded()

    handlers = {QUEUE: recognize_messages, GUESS_QUEUE: guess_messages}

    def consumer_of(queue: str) -> Callable[[], BatchConsumer]:
        handle = handlers[queue]

        def make() -> BatchConsumer:
            # Parallelism comes from worker processes; torch threads would only contend.
            torch.set_num_threads(1)
            runtime = runtimes.get()
            with contextlib.suppress(*TRANSIENT):
                runtime.models.current()  # loaded before the first message, when there is one
            backoff = Backoff()  # each consumer's thread has its own
            return BatchConsumer(
                runtime.redis,
                queue,
                settings.batch_size,
                lambda batch: handle(batch, backoff),
                lambda exc: backoff.failed(f"taking {queue} off the queue", exc),
                ConsumerBeat(runtime.redis, queue, settings),  # /readyz counts it
            )

        return make

    for queue in batch_queues:
        step = consumer_step(queue, consumer_of(queue), settings.task_time_limit)
        app.steps["worker"].add(step)

    @app.task(name=SWEEP, ignore_result=True)
    def sweep_task() -> None:
        try:
            runtime = runtimes.get()
            sweep(runtime, lambda rid: enqueue_recognition(runtime.redis, rid))
        except TRANSIENT as exc:
            log.warning("sweep skipped: %s: %s", type(exc).__name__, exc)

    @app.task(name=ERASE, ignore_result=True)
    def erase_task(public_id: str) -> None:
        # Idempotent and leased: a copy of the message, or a resend after a dead worker,
        # carries on where the last attempt stopped. Failures wait for the sweeper.
        try:
            request = uuid.UUID(str(public_id))
        except ValueError:
            log.error("dropping an erasure message with a malformed id")
            return
        try:
            runtime = runtimes.get()
            work_erasure(runtime, runtime.redis, request)
        except TRANSIENT as exc:
            # The kind only: a database error's text quotes its statement's parameters.
            log.warning("erasure %s left for the sweeper: %s", request, type(exc).__name__)
        finally:
            _scrub(str(public_id))

    def _scrub(public_id: str) -> None:
        # The files still hold what was erased: rewritten once the burst of erasures is
        # over (services.erasure_scrub). An erasure that failed runs it too, so that one
        # stuck request delays it by at most its MAX_DELAY. What is left over is asked
        # again in a while by this message's copy (the erasure itself does nothing twice).
        try:
            runtime = runtimes.get()
            report = scrub_erased_data(runtime, runtime.redis)
            if report is None or report.complete:
                return
        except Exception as exc:  # the erasure itself stands
            log.warning("erasure scrub failed: %s", type(exc).__name__)
        try:
            erase_task.apply_async(
                args=[public_id], queue=MAINTENANCE_QUEUE, countdown=SCRUB_RETRY_SECONDS
            )
        except Exception as exc:  # the broker is down: the next erasure asks again
            log.warning("erasure scrub not rescheduled: %s", type(exc).__name__)

    return app
