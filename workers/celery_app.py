"""The Celery application, built from Settings (never at import time)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from core.settings import Settings
from workers.signatures import ALL_QUEUES, MAINTENANCE_QUEUE, QUEUE, SWEEP


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
        # Ack after the task ran: a worker killed mid-task leaves the message to redeliver.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=settings.worker_prefetch,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout,
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
