"""The worker's Celery app: the tasks registered on an app built from Settings."""

from __future__ import annotations

import logging
import uuid

import torch
from celery import Celery, Task
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.exc import OperationalError

from core.settings import Settings
from core.storage import StorageUnavailable
from workers.celery_app import make_celery
from workers.model_cache import NoModel
from workers.recognize import BUSY, recognize, sweep_stale
from workers.runtime import RuntimeHolder
from workers.signatures import RECOGNIZE, SWEEP, enqueue_recognition

log = logging.getLogger(__name__)

# Infrastructure hiccups are retried with backoff; the message stays unacked meanwhile.
TRANSIENT = (OperationalError, StorageUnavailable, NoModel, ConnectionError)


def make_worker_app(settings: Settings) -> Celery:
    app = make_celery(settings)
    runtimes = RuntimeHolder(settings)

    @worker_process_init.connect(weak=False)
    def _fresh_process(**_: object) -> None:
        # A forked pool process must not reuse the parent's connections.
        runtimes.reset()
        # Parallelism comes from the pool's processes; torch threads would only contend.
        torch.set_num_threads(1)

    @worker_process_shutdown.connect(weak=False)
    def _close_process(**_: object) -> None:
        runtimes.reset()

    @app.task(
        name=RECOGNIZE,
        bind=True,
        autoretry_for=TRANSIENT,
        retry_backoff=True,
        retry_backoff_max=30,
        max_retries=8,
    )
    def recognize_task(self: Task, recognition_id: str) -> str:
        try:
            parsed = uuid.UUID(recognition_id)
        except ValueError:
            log.error("dropping message with a malformed recognition id %r", recognition_id)
            return "malformed"
        status = recognize(runtimes.get(), parsed)
        if status == BUSY:
            # Another delivery is on it; look again once it must have finished or died.
            raise self.retry(countdown=settings.task_time_limit, max_retries=None)
        return status

    @app.task(name=SWEEP, ignore_result=True)
    def sweep_task() -> int:
        return sweep_stale(runtimes.get(), lambda rid: enqueue_recognition(app, rid))

    return app
