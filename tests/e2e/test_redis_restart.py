"""The workers live through Redis restarts under load, and nothing accepted is lost.

A Redis server of the test's own (on a free port: the test kills it) behind a real API,
real Celery workers (recognitions, guesses) and the sweeper's beat. While clients post
doodles and live guesses, Redis is killed (SIGKILL, so up to a second of its
append-only file is lost with it) and started again: twice after a while down, then
three times in quick succession, as a supervisor restarting a crashing Redis would.
The workers must be the same processes at the end (issue 7 saw the worker exit with
kombu's `AttributeError: 'NoneType' object has no attribute 'hostname'` when Redis was
killed), and every doodle the API accepted must end done: those whose message Redis
lost are resent by the sweeper.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import requests
from sqlalchemy import func, select

from db.models import Recognition, RecognitionStatus
from devtools.net import free_port
from devtools.redis_server import EmbeddedRedis
from tests.fixtures.app import CLIENT_KEY

HEADERS = {"X-API-Key": CLIENT_KEY}
# Seconds Redis stays down at each kill.
OUTAGES = (1.5, 1.5, 0.2, 0.2, 0.2)
FINISH_SECONDS = 40
# The sweeper resends queued doodles this soon (its default, 60 s, would make a slow test).
FAST_SWEEPER = {"DOODLE_SWEEPER_STALE_SECONDS": "2", "DOODLE_SWEEP_SECONDS": "1"}


class Clients:
    """Threads that post doodles back to back and keep the ids the API accepted."""

    def __init__(
        self, base_url: str, drawings: list[list], path: str = "/v1/recognitions", threads: int = 2
    ) -> None:
        self.url, self.drawings = base_url + path, drawings
        self.accepted: list[str] = []
        self.refused: dict[int, int] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._post, args=(i,)) for i in range(threads)]

    def _post(self, offset: int) -> None:
        i = offset
        while not self.stop.is_set():
            body = {"drawing": self.drawings[i % len(self.drawings)]}
            i += len(self.threads)
            try:
                r = requests.post(self.url, json=body, headers=HEADERS, timeout=15)
            except requests.RequestException:
                continue
            if r.status_code in (200, 202) and "id" in r.json():
                self.accepted.append(r.json()["id"])
            else:
                self.refused[r.status_code] = self.refused.get(r.status_code, 0) + 1
            time.sleep(0.01)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def _unfinished(session_factory, ids: list[str]) -> dict[str, object]:
    """What the doodles not done are doing: counts by status, and the failures' reasons."""
    with session_factory() as s:
        rows = s.execute(
            select(Recognition.status, Recognition.attempts, Recognition.error).where(
                Recognition.id.in_(ids), Recognition.status != RecognitionStatus.done
            )
        ).all()
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row.status.value] = by_status.get(row.status.value, 0) + 1
    return {"by_status": by_status, "errors": sorted({r.error for r in rows if r.error})[:5]}


def _done(session_factory, ids: list[str]) -> int:
    with session_factory() as s:
        return int(
            s.scalar(
                select(func.count()).where(
                    Recognition.id.in_(ids), Recognition.status == RecognitionStatus.done
                )
            )
            or 0
        )


def test_the_worker_survives_redis_restarts_under_load(
    stack, settings, sample_drawings, db_session_factory, tmp_path
):
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    url, _ = server.up()
    try:
        stack.settings = settings.with_services(redis_url=url)
        stack.start_worker("worker", "--queues", "recognitions,maintenance", **FAST_SWEEPER)
        stack.start_worker("guesser", "--queues", "guesses", "--pool", "solo")
        stack.start("beat", "beat", **FAST_SWEEPER)
        stack.wait_worker_ready("worker")
        stack.wait_worker_ready("guesser")
        stack.start_api()  # ready once both batch queues have a live worker
        worker = stack.procs["worker"]
        drawings = [d["drawing"] for ds in sample_drawings.values() for d in ds[:3]]

        guessing = Clients(stack.base_url, drawings, "/v1/guesses", threads=1)
        with Clients(stack.base_url, drawings) as clients, guessing:
            for down in OUTAGES:
                time.sleep(2 if down > 1 else 0.3)
                before = len(clients.accepted)
                pid = server._pid()
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                time.sleep(down)
                server.up()
                if down > 1:
                    time.sleep(1)
                    assert len(clients.accepted) > before, "nothing accepted around a restart"
            time.sleep(2)  # load on the restarted Redis too

        assert worker.poll() is None, f"the worker exited:\n{stack.tail('worker', 80)}"
        assert stack.procs["guesser"].poll() is None, stack.tail("guesser", 80)
        assert guessing.refused.get(500, 0) == 0, guessing.refused
        assert stack.procs["beat"].poll() is None, stack.tail("beat")
        ids = clients.accepted
        assert len(ids) > 50, (len(ids), clients.refused)
        deadline = time.monotonic() + FINISH_SECONDS
        while (done := _done(db_session_factory, ids)) < len(ids):
            assert time.monotonic() < deadline, (
                f"{len(ids) - done} of {len(ids)} accepted doodles never finished: "
                f"{_unfinished(db_session_factory, ids)}\n" + stack.tail("worker", 60)
            )
            time.sleep(0.5)
        for name in ("worker", "guesser"):
            assert "Unrecoverable error" not in (stack.logs / f"{name}.log").read_text()
        print(
            f"{len(ids)} accepted, all done; refused {clients.refused}; guesses {guessing.refused}"
        )
    finally:
        stack.stop()
        server.stop()
