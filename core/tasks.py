"""The contract between the API and the workers: task names, queues, the task messages the
API publishes, and the Redis keys results travel on. The API knows workers through this
module only (never the `workers` package, see the import contracts in pyproject.toml).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import time
import uuid
from typing import Any

import redis

RECOGNIZE = "doodle.recognize"
GUESS = "doodle.guess"
SWEEP = "doodle.sweep"
ERASE = "doodle.erase"

# Redis lists of the broker (kombu's Redis transport names each list after its queue).
QUEUE = "recognitions"
GUESS_QUEUE = "guesses"
MAINTENANCE_QUEUE = "maintenance"
# `doodle worker` consumes all three unless told otherwise; `make run` and compose give
# guesses a worker of their own, so they never wait behind a batch of recognitions.
ALL_QUEUES = (GUESS_QUEUE, QUEUE, MAINTENANCE_QUEUE)
# Taken off in batches by worker steps of their own (workers.consumer), not by Celery.
BATCH_QUEUES = (GUESS_QUEUE, QUEUE)
# Where nothing is ever sent: Celery's queue in a worker that only consumes BATCH_QUEUES.
IDLE_QUEUE = "idle"

# A waiter's result list outlives any sensible wait.
RESULT_TTL_SECONDS = 60
# How long the last batch of recognitions waited between being recorded and claimed (ms),
# set by workers: the API sheds live guesses while stored recognitions wait too long.
RECOGNITION_WAIT_KEY = "doodle:load:recognition_wait_ms"
RECOGNITION_WAIT_TTL_SECONDS = 2  # a stale figure must not shed guesses for long


_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"
_NO_WORKFLOW = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def task_message(task: str, args: list[Any], queue: str, argsrepr: str | None = None) -> bytes:
    """A Celery task message (protocol 2, JSON) as kombu's Redis transport stores it.

    Built here rather than by `Celery.send_task`, which costs ~0.4 ms of CPU a call to the
    LPUSH's 0.08: once a doodle, that was a fifth of the API's work. Celery and kombu are
    pinned; tests/integration/test_task_messages.py checks the message against kombu's.
    `argsrepr` is what Celery logs of the arguments (never strokes).
    """
    task_id = str(uuid.uuid4())
    body = json.dumps([args, {}, _NO_WORKFLOW]).encode()
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args) if argsrepr is None else argsrepr,
            "kwargsrepr": "{}",
            "origin": _ORIGIN,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(message).encode()


def message_args(raw: bytes) -> list[Any] | None:
    """The arguments a task message carries (as `task_message` built it), or None if it
    is not such a message."""
    try:
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return args if isinstance(args, list) else None


def recognition_message(recognition_id: uuid.UUID, request_id: str | None = None) -> bytes:
    """The task for one recorded doodle: its id and the id of the request that made it (for
    the logs), if any; the row holds the rest."""
    args = [str(recognition_id)] if request_id is None else [str(recognition_id), request_id]
    return task_message(RECOGNIZE, args, QUEUE)


def guess_message(guess_id: str, drawing: list, timeout: float) -> bytes:
    """A live guess carries its strokes (it is never stored) and a deadline past which the
    client has stopped waiting, so a worker skips it."""
    args = [guess_id, drawing, time.time() + timeout]
    argsrepr = repr([guess_id, "<strokes>", args[2]])
    return task_message(GUESS, args, GUESS_QUEUE, argsrepr=argsrepr)


def enqueue_recognition(
    client: redis.Redis, recognition_id: uuid.UUID, request_id: str | None = None
) -> None:
    # kombu's Redis transport: a queue is a list named after it, LPUSHed and BRPOPed.
    client.lpush(QUEUE, recognition_message(recognition_id, request_id))


def enqueue_guess(client: redis.Redis, guess_id: str, drawing: list, timeout: float) -> None:
    client.lpush(GUESS_QUEUE, guess_message(guess_id, drawing, timeout))


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


def erasure_message(public_id: uuid.UUID) -> bytes:
    """The task that works a player's erasure: the request's public id (never the player's)."""
    return task_message(ERASE, [str(public_id)], MAINTENANCE_QUEUE)


def enqueue_erasure(client: redis.Redis, public_id: uuid.UUID) -> None:
    client.lpush(MAINTENANCE_QUEUE, erasure_message(public_id))


def done_channel(recognition_id: uuid.UUID | str) -> str:
    """Redis list a worker pushes a finished recognition's result to (see api.waiting)."""
    return f"doodle:done:{recognition_id}"


def guess_channel(guess_id: str) -> str:
    """Redis list a worker pushes a live guess's answer to."""
    return f"doodle:guess:{guess_id}"
