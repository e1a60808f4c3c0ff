"""The Celery application, built from Settings (never at import time)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from core.settings import Settings
from core.tasks import ALL_QUEUES, MAINTENANCE_QUEUE, QUEUE, SWEEP


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for at-least-once delivery of idempotent tasks."""
    app = Celery("doodle", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        task_queues=[Queue(name) for name in ALL_QUEUES],
        # Results go to Postgres and to Redis lists for waiters, not a result backend.
        task_ignore_result=True,
        worker_prefetch_multiplier=settings.worker_prefetch,
        broker_transport_options={
            # A message is a wake-up call, not the record of work: the Postgres row is, and
            # the sweeper resends what a dead worker held (by its lease, in seconds). kombu's
            # ack emulation (a copy of every message in an "unacked" hash, restored after a
            # visibility timeout of minutes) cost two Redis round trips a message, about a
            # fifth of a worker's time, for a recovery slower than the sweeper's.
            "ack_emulation": False,
            "socket_connect_timeout": 2,
        },
        # The API must not hang on a dead broker: the durable row and the sweeper cover it.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        broker_connection_retry_on_startup=True,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep": {
                "task": SWEEP,
                "schedule": settings.sweep_seconds,
                # A sweep nobody ran in time is superseded by the next one.
                "options": {"queue": MAINTENANCE_QUEUE, "expires": settings.sweep_seconds},
            }
        },
    )
    return app
