"""Task names, queues and the Redis keys results travel on: all the API may know of workers.

Importing this module never imports torch or the ml package.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from celery import Celery

RECOGNIZE = "doodle.recognize"
GUESS = "doodle.guess"
SWEEP = "doodle.sweep"

# Redis lists of the broker (kombu's Redis transport names each list after its queue).
QUEUE = "recognitions"
GUESS_QUEUE = "guesses"
MAINTENANCE_QUEUE = "maintenance"
# `doodle worker` consumes all three unless told otherwise; `make run` and compose give
# guesses a worker of their own, so they never wait behind a batch of recognitions.
ALL_QUEUES = (GUESS_QUEUE, QUEUE, MAINTENANCE_QUEUE)

# A waiter's result list outlives any sensible wait.
RESULT_TTL_SECONDS = 60
# How long the last batch of recognitions waited between being recorded and claimed (ms),
# set by workers: the API sheds live guesses while stored recognitions wait too long.
RECOGNITION_WAIT_KEY = "doodle:load:recognition_wait_ms"
RECOGNITION_WAIT_TTL_SECONDS = 2  # a stale figure must not shed guesses for long


def enqueue_recognition(celery: Celery, recognition_id: uuid.UUID) -> None:
    celery.send_task(RECOGNIZE, args=[str(recognition_id)], queue=QUEUE)


def enqueue_guess(celery: Celery, guess_id: str, drawing: list, timeout: float) -> None:
    """A live guess carries its strokes (it is never stored) and a deadline past which the
    client has stopped waiting, so a worker skips it."""
    celery.send_task(GUESS, args=[guess_id, drawing, time.time() + timeout], queue=GUESS_QUEUE)


def result_document(
    *,
    status: str,
    finished_at: dt.datetime | None,
    label: str | None,
    confidence: float | None,
    top: Any,
    model_version: int | None,
    timings: dict[str, float] | None,
    stored: bool,
    error: str | None,
) -> dict[str, Any]:
    """What a worker made of a recognition, as the API shows it: handed over by the worker
    to a waiting request, or read from the row (see api.schemas.recognition_document)."""
    document: dict[str, Any] = {
        "status": status,
        "finished_at": finished_at.isoformat() if finished_at else None,
        "prediction": None,
        "model_version": model_version,
        "timings": timings,
        "stored": stored,
    }
    if label is not None:
        document["prediction"] = {"label": label, "confidence": confidence, "top": top}
    if error:
        document["error"] = error
    return document


def done_channel(recognition_id: uuid.UUID | str) -> str:
    """Redis list a worker pushes a finished recognition's result to (see api.waiting)."""
    return f"doodle:done:{recognition_id}"


def guess_channel(guess_id: str) -> str:
    """Redis list a worker pushes a live guess's answer to."""
    return f"doodle:guess:{guess_id}"
