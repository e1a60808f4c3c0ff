"""A worker shutting down cleanly puts the doodles still in its batch buffer back on the
queue: messages leave Redis when read (no ack emulation), so they are not redelivered."""

from __future__ import annotations

import base64
import json
import uuid

import redis
from celery.signals import worker_shutting_down
from celery_batches import SimpleRequest

from core.settings import Settings
from core.tasks import QUEUE, RECOGNIZE
from workers.tasks import make_worker_app


def _buffered(rid: uuid.UUID, request_id: str | None) -> SimpleRequest:
    args = (str(rid),) if request_id is None else (str(rid), request_id)
    return SimpleRequest(str(uuid.uuid4()), RECOGNIZE, args, {}, {}, "test", True, None, None, {})


def test_buffered_doodles_go_back_on_the_queue(settings: Settings, redis_client: redis.Redis):
    app = make_worker_app(settings)
    task = app.tasks[RECOGNIZE]
    ids = [uuid.uuid4(), uuid.uuid4()]
    task._buffer.put(_buffered(ids[0], "req-1"))
    task._buffer.put(_buffered(ids[1], None))
    try:
        worker_shutting_down.send(sender="test", sig="SIGTERM", how="Warm", exitcode=0)
    finally:
        app.close()
    assert task._buffer.empty()
    messages = [json.loads(raw) for raw in redis_client.lrange(QUEUE, 0, -1)]
    args = sorted(json.loads(base64.b64decode(m["body"]))[0] for m in messages)
    assert args == sorted([[str(ids[0]), "req-1"], [str(ids[1])]])
