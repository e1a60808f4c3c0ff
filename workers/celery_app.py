"""The Celery application, built from Settings (never at import time)."""

from __future__ import annotations

from celery import Celery

from core.settings import Settings
from workers.signatures import QUEUE, SWEEP


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for at-least-once delivery of idempotent tasks."""
    app = Celery("doodle", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        # Results go to Postgres (and a Redis list for waiters), not a result backend.
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
            "sweep-stale-recognitions": {
                "task": SWEEP,
                "schedule": float(max(5, settings.sweeper_stale_seconds // 2)),
                "options": {"queue": QUEUE},
            }
        },
    )
    return app
