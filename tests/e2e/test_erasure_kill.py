"""An erasure whose worker is killed with SIGKILL half-way is finished by a real worker:
its lease runs out, the worker's periodic sweeper resends it, the next attempt carries on."""

from __future__ import annotations

import sys
import textwrap
import time
import uuid

from sqlalchemy import func, select

from db.models import Player, Recognition
from services import erasure
from tests.integration.test_erasure_removal import post
from workers.recognize import recognize_batch
from workers.runtime import WorkerRuntime

PLAYER = "p-killed-erasure"

# A worker that erases one doodle a batch and hangs after the first: killed there.
HANGING_WORKER = textwrap.dedent(
    """
    import sys, time, uuid
    import redis
    from core.settings import Settings
    from services import erasure
    from services.connections import Connections

    real = erasure.remove_doodles
    calls = []

    def hangs_after_the_first(*args):
        if calls:
            time.sleep(600)
        calls.append(1)
        return real(*args)

    erasure.BATCH = 1
    erasure.remove_doodles = hangs_after_the_first
    settings = Settings.from_env()
    client = redis.Redis.from_url(settings.broker_url)
    erasure.work_erasure(Connections(settings), client, uuid.UUID(sys.argv[1]))
    """
)


def _state(runtime: WorkerRuntime, public_id: uuid.UUID) -> erasure.Erasure:
    return erasure.get_erasure(runtime, public_id)


def test_a_worker_killed_mid_erasure_leaves_it_to_be_finished(
    stack, worker_runtime: WorkerRuntime, seed_version: int
) -> None:
    doodles = [post(worker_runtime.sessions, PLAYER) for _ in range(3)]
    recognize_batch(worker_runtime, doodles)
    assert worker_runtime.objects.flush()
    public_id = erasure.request_erasure(worker_runtime, PLAYER, "player").erasure.public_id

    stack.processes.start(
        "hanging", [sys.executable, "-c", HANGING_WORKER, str(public_id)], stack.env()
    )
    deadline = time.monotonic() + 30
    while _state(worker_runtime, public_id).deleted.get("recognitions", 0) < 1:
        assert time.monotonic() < deadline, stack.tail("hanging")
        time.sleep(0.1)
    stack.kill("hanging")
    state = _state(worker_runtime, public_id)
    assert state.status == "pending" and state.deleted["recognitions"] == 1
    with worker_runtime.sessions() as s:
        assert s.get(Player, PLAYER) is not None

    stack.start_worker("worker", "--beat", DOODLE_LEASE_SECONDS="1")
    deadline = time.monotonic() + 60
    while not (state := _state(worker_runtime, public_id)).done:
        assert time.monotonic() < deadline, (state, stack.tail("worker"))
        time.sleep(0.2)

    assert state.deleted["recognitions"] == 3 and state.deleted["players"] == 1
    assert state.attempts >= 2
    with worker_runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Recognition)) == 0
        assert s.get(Player, PLAYER) is None
    assert list(worker_runtime.storage.list("segments/")) == []
