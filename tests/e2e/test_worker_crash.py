"""A worker killed mid-flight loses nothing: another worker finishes every accepted doodle."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from db.models import Recognition, RecognitionStatus
from tests.fixtures.app import CLIENT_KEY

DOODLES = 300


def _counts(session_factory) -> dict[RecognitionStatus, int]:
    with session_factory() as s:
        rows = s.execute(
            select(Recognition.status, func.count()).group_by(Recognition.status)
        ).all()
    return {status: n for status, n in rows}


def test_killing_a_worker_mid_task_loses_nothing(stack, sample_drawings, db_session_factory):
    stack.start_api()
    drawings = [d["drawing"] for ds in sample_drawings.values() for d in ds][:DOODLES]

    def post(drawing: list) -> str:
        response = requests.post(
            f"{stack.base_url}/v1/recognitions",
            json={"drawing": drawing},
            headers={"X-API-Key": CLIENT_KEY},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(post, drawings))
    assert len(set(ids)) == DOODLES

    # Short timeouts so the test recovers quickly; production defaults are minutes.
    fast = {
        "DOODLE_BROKER_VISIBILITY_TIMEOUT": "5",
        "DOODLE_SWEEPER_STALE_SECONDS": "10",
        "DOODLE_TASK_SOFT_TIME_LIMIT": "5",
    }
    stack.start_worker("worker-1", **fast)
    deadline = time.monotonic() + 60
    while _counts(db_session_factory).get(RecognitionStatus.done, 0) < 10:
        assert time.monotonic() < deadline, stack.tail("worker-1")
        time.sleep(0.02)
    stack.kill("worker-1")  # SIGKILL to the whole process group: no goodbye
    unfinished = DOODLES - _counts(db_session_factory).get(RecognitionStatus.done, 0)
    assert unfinished > 0, "the worker finished everything before it was killed"

    stack.start_worker("worker-2", "--beat", **fast)
    deadline = time.monotonic() + 120
    while _counts(db_session_factory).get(RecognitionStatus.done, 0) < DOODLES:
        assert time.monotonic() < deadline, (_counts(db_session_factory), stack.tail("worker-2"))
        time.sleep(0.5)
    counts = _counts(db_session_factory)
    assert counts == {RecognitionStatus.done: DOODLES}
    with db_session_factory() as s:
        assert s.scalar(select(func.count()).where(Recognition.label.is_(None))) == 0
    print(f"{unfinished} doodles were unfinished when the worker died; all {DOODLES} done")
