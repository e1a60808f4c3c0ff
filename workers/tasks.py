"""The worker's Celery app: micro-batched tasks registered on an app built from Settings.

Recognitions and live guesses are micro-batched tasks (`workers.batching`): the worker
buffers their messages and runs one task call per batch (at `batch_size` messages, when no
more are arriving, or `batch_wait_ms` after the first). A message leaves Redis when it is
read (no ack emulation, see workers.celery_app): the row in Postgres, not the message, is
the record of work, and the sweeper resends what a dead worker held; a worker shutting
down cleanly puts the doodles still in its buffer back on the queue.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence

import torch
from celery import Celery
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from celery_batches import SimpleRequest
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from core.settings import Settings
from core.storage import StorageError
from core.tasks import ERASE, GUESS, RECOGNIZE, SWEEP, enqueue_recognition
from services.erasure import work_erasure
from workers.batching import AdaptiveBatches
from workers.celery_app import make_celery
from workers.guess import GuessRequest, guess_batch
from workers.metrics import Heartbeat, started_heartbeat
from workers.model_cache import NoModel
from workers.per_process import PerProcess
from workers.recognize import recognize_batch, sweep
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# Infrastructure that is down: the work waits (in Postgres) and is resent; never counted.
TRANSIENT = (OperationalError, RedisError, StorageError, NoModel, ConnectionError)
MAX_BACKOFF_SECONDS = 5.0


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


def _recognition_ids(requests: Sequence[SimpleRequest]) -> dict[uuid.UUID, str | None]:
    """{recognition id: id of the API request that made it, if the message names one}."""
    ids: dict[uuid.UUID, str | None] = {}
    for request in requests:
        try:
            rid = uuid.UUID(str(request.args[0]))
        except (ValueError, IndexError):
            log.error("dropping a message with a malformed recognition id: %r", request.args)
            continue
        named = str(request.args[1]) if len(request.args) > 1 else None
        ids[rid] = named or ids.get(rid)
    return ids


def _guess_requests(requests: Sequence[SimpleRequest]) -> list[GuessRequest]:
    out = []
    for request in requests:
        try:
            guess_id, drawing, deadline = request.args
            out.append(GuessRequest(str(guess_id), drawing, float(deadline)))
        except (ValueError, TypeError):
            log.error("dropping a malformed guess message")
    return out


def make_worker_app(settings: Settings) -> Celery:
    app = make_celery(settings)
    runtimes = PerProcess(lambda: WorkerRuntime(settings), WorkerRuntime.close)
    heartbeats = PerProcess(lambda: started_heartbeat(settings), Heartbeat.stop)
    backoff = Backoff()
    batch_options = {
        "base": AdaptiveBatches,
        "flush_every": settings.batch_size,
        "max_wait": settings.batch_wait_ms / 1000,
    }

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

    @worker_shutting_down.connect(weak=False)
    def _hand_back_buffered(**_: object) -> None:
        # Messages are gone from Redis once read (no ack emulation): doodles still waiting
        # in this worker's batch buffer go back on the queue now, not after a sweep.
        buffered = recognize_task._buffer
        requests = []
        while not buffered.empty():
            requests.append(buffered.get_nowait())
        ids = _recognition_ids(requests)
        if not ids:
            return
        try:
            redis_client = runtimes.get().redis
            for rid, request_id in ids.items():
                enqueue_recognition(redis_client, rid, request_id)
        except RedisError as exc:
            log.warning("%d buffered doodles left for the sweeper: %s", len(ids), exc)
            return
        log.info("handed %d buffered doodles back to the queue", len(ids))

    @app.task(name=RECOGNIZE, **batch_options)
    def recognize_task(requests: Sequence[SimpleRequest]) -> None:
        ids = _recognition_ids(requests)
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

    @app.task(name=GUESS, **batch_options)
    def guess_task(requests: Sequence[SimpleRequest]) -> None:
        guesses = _guess_requests(requests)
        try:
            guess_batch(runtimes.get(), guesses)
        except TRANSIENT as exc:
            # The waiting requests time out and answer 503; guesses are never retried.
            backoff.failed(f"{len(guesses)} guesses dropped", exc)

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

    return app
