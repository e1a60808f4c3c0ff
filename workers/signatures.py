"""Task names and how to enqueue them: all the API may know about the workers.

Importing this module never imports torch or the ml package.
"""

from __future__ import annotations

import uuid

from celery import Celery

RECOGNIZE = "doodle.recognize"
SWEEP = "doodle.sweep_stale"

QUEUE = "recognitions"


def enqueue_recognition(celery: Celery, recognition_id: uuid.UUID) -> None:
    celery.send_task(RECOGNIZE, args=[str(recognition_id)], queue=QUEUE)


def done_channel(recognition_id: uuid.UUID | str) -> str:
    """Redis list a worker pushes to when a recognition is finished (see api.waiting)."""
    return f"doodle:done:{recognition_id}"
