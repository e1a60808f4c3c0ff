"""Nothing accepted is lost, nothing is recorded twice: real API and worker processes.

- a worker killed with SIGKILL in the middle of batches: another worker finishes every
  doodle within 15 s of being up, with the default lease and sweeper timings;
- object storage down for a while: doodles keep being answered, none fails or loses its
  strokes, and their objects are written once storage is back;
- one unreadable drawing in a batch fails alone.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis
import requests
from sqlalchemy import func, select

from core import segments
from core.storage import open_storage
from core.tasks import enqueue_recognition
from db import recognitions as rec
from db.models import InputFormat, Recognition, RecognitionStatus
from tests.fixtures.app import CLIENT_KEY
from tests.fixtures.players import seeded_player
from tests.fixtures.proxy import TcpProxy

HEADERS = {"X-API-Key": CLIENT_KEY}
KEEP = {"store": True, "train": True, "version": "2026-11"}
RECOVERY_SECONDS = 15


def _counts(session_factory) -> dict[RecognitionStatus, int]:
    with session_factory() as s:
        rows = s.execute(
            select(Recognition.status, func.count()).group_by(Recognition.status)
        ).all()
    return {status: n for status, n in rows}


def _post_all(
    base_url: str, bodies: list[dict], wait: float = 0, secrets: dict[str, str] | None = None
) -> list[requests.Response]:
    """Every body at once; a body naming a player carries their secret (`secrets`)."""
    headers = {**HEADERS, **({"Prefer": f"wait={wait:g}"} if wait else {})}

    def post(body: dict) -> requests.Response:
        player = body.get("player_id")
        own = {"X-Player-Secret": (secrets or {})[player]} if player else {}
        return requests.post(
            f"{base_url}/v1/recognitions", json=body, headers={**headers, **own}, timeout=30
        )

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, bodies))


def test_a_worker_killed_mid_batch_loses_nothing_and_is_replaced_fast(
    stack, sample_drawings, db_session_factory
):
    # Accepted before any worker runs: an API ready without workers (the default waits).
    stack.start_api(DOODLE_READY_MIN_WORKERS="0")
    drawings = [d["drawing"] for ds in sample_drawings.values() for d in ds][:300]
    bodies = [
        {"drawing": d, "player_id": f"p{i % 7}", "consent": KEEP} for i, d in enumerate(drawings)
    ]
    secrets = {f"p{i}": seeded_player(db_session_factory, f"p{i}") for i in range(7)}
    responses = _post_all(stack.base_url, bodies, secrets=secrets)
    assert all(r.status_code == 202 for r in responses)
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == len(drawings)

    stack.start_worker("worker-1")
    deadline = time.monotonic() + 60
    while _counts(db_session_factory).get(RecognitionStatus.done, 0) < 10:
        assert time.monotonic() < deadline, stack.tail("worker-1")
        time.sleep(0.01)
    stack.kill("worker-1")  # SIGKILL to the whole process group: no goodbye
    counts = _counts(db_session_factory)
    unfinished = len(drawings) - counts.get(RecognitionStatus.done, 0)
    assert unfinished > 0, "the worker finished everything before it was killed"
    running = counts.get(RecognitionStatus.running, 0)

    stack.start_worker("worker-2", "--beat")
    up = stack.wait_worker_ready("worker-2")
    while _counts(db_session_factory).get(RecognitionStatus.done, 0) < len(drawings):
        assert time.monotonic() - up < RECOVERY_SECONDS, (
            _counts(db_session_factory),
            stack.tail("worker-2"),
        )
        time.sleep(0.2)
    took = time.monotonic() - up
    assert _counts(db_session_factory) == {RecognitionStatus.done: len(drawings)}
    with db_session_factory() as s:
        rows = s.execute(select(Recognition.label, Recognition.attempts)).all()
    assert all(label is not None for label, _ in rows)
    # Only doodles the dead worker held count a second attempt; none was given up on.
    assert max(attempts for _, attempts in rows) <= 2
    # Every kept doodle's object is written once the dust settles.
    deadline = time.monotonic() + 30
    while True:
        with db_session_factory() as s:
            pending = s.scalar(select(func.count()).where(Recognition.stored_at.is_(None)))
        if pending == 0:
            break
        assert time.monotonic() < deadline, f"{pending} objects never written"
        time.sleep(0.5)
    print(
        f"{unfinished} unfinished ({running} running) at the kill; all done {took:.1f}s "
        "after the second worker was up"
    )


def test_object_storage_down_answers_all_and_writes_later(
    stack, sample_drawings, db_session_factory, settings
):
    with TcpProxy(settings.object_store_url) as proxy:
        stack.settings = settings.with_services(storage_url=proxy.url)
        # Workers first: the API is ready once a live worker consumes each batch queue.
        stack.start_worker("worker", "--beat", DOODLE_STORAGE_RETRY_SECONDS="1")
        stack.wait_worker_ready("worker")
        stack.start_api()
        # Warm: the model is loaded (from storage) before storage goes away.
        first = _post_all(stack.base_url, [{"drawing": sample_drawings["star"][0]["drawing"]}], 10)
        assert first[0].status_code == 200, first[0].text

        proxy.stop()  # connections refused from now on
        drawings = [d["drawing"] for ds in sample_drawings.values() for d in ds[:4]]
        bodies = [{"drawing": d, "player_id": "p-outage", "consent": KEEP} for d in drawings]
        secrets = {"p-outage": seeded_player(db_session_factory, "p-outage")}
        responses = _post_all(stack.base_url, bodies, wait=10, secrets=secrets)
        assert [r.status_code for r in responses] == [200] * len(bodies), stack.tail("worker")
        assert all(r.json()["status"] == "done" and r.json()["stored"] for r in responses)
        ids = [uuid.UUID(r.json()["id"]) for r in responses]
        time.sleep(3)  # a few sweeps while storage is still down
        with db_session_factory() as s:
            rows = s.scalars(select(Recognition).where(Recognition.id.in_(ids))).all()
            assert all(r.status is RecognitionStatus.done and r.attempts == 1 for r in rows)
            # Nothing written, nothing lost: the strokes wait in the rows.
            assert all(r.stored_at is None and r.payload is not None for r in rows)

        proxy.start()  # storage is back
        deadline = time.monotonic() + 30
        while True:
            with db_session_factory() as s:
                pending = s.scalar(
                    select(func.count()).where(
                        Recognition.id.in_(ids), Recognition.stored_at.is_(None)
                    )
                )
            if pending == 0:
                break
            assert time.monotonic() < deadline, (pending, stack.tail("worker"))
            time.sleep(0.5)
        storage = open_storage(settings.object_store_url)
        with db_session_factory() as s:
            where = dict(s.execute(select(Recognition.id, Recognition.strokes_key)).all())
        for rid, drawing in zip(ids, drawings, strict=True):
            assert segments.find(storage.get(where[rid]), rid)["drawing"] == drawing
        with db_session_factory() as s:
            assert (
                s.scalar(
                    select(func.count()).where(
                        Recognition.id.in_(ids), Recognition.payload.is_not(None)
                    )
                )
                == 0
            )


def test_an_unreadable_drawing_fails_alone_in_its_batch(
    stack, sample_drawings, db_session_factory, settings
):
    """A drawing the API would refuse, slipped into the queue beside good ones."""
    good = [d["drawing"] for d in sample_drawings["cup"][:7]]
    ids = []
    with db_session_factory.begin() as s:
        for payload in [*good[:3], [[["x", "y"], [1, 2]]], *good[3:]]:
            new = rec.NewRecognition(input_format=InputFormat.simplified, payload=payload)
            ids.append(rec.insert_recognition(s, new).id)
    broker = redis.Redis.from_url(settings.broker_url)
    try:
        for rid in ids:  # queued before the worker starts: they arrive as one batch
            enqueue_recognition(broker, rid)
    finally:
        broker.close()
    stack.start_worker("worker")
    deadline = time.monotonic() + 60
    while sum(_counts(db_session_factory).get(s, 0) for s in ("done", "failed")) < len(ids):
        assert time.monotonic() < deadline, stack.tail("worker")
        time.sleep(0.2)
    with db_session_factory() as s:
        rows = {r.id: r for r in s.scalars(select(Recognition)).all()}
    bad = rows[ids[3]]
    assert bad.status is RecognitionStatus.failed and bad.error.startswith("unreadable")
    assert bad.attempts == 1
    assert all(rows[i].status is RecognitionStatus.done for i in ids if i != ids[3])
    assert {rows[i].timings["batch"] for i in ids if i != ids[3]} != {1}
