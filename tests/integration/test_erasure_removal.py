"""services.removal.remove_doodles: rows, segment lines, PNGs and Redis go; other
players' doodles in the same segment stay; the object writer never brings a removed
doodle back (the per-key advisory lock and the re-check of rows)."""

from __future__ import annotations

import base64
import io
import threading
import time
import uuid

import redis
from PIL import Image, ImageDraw
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from core import segments
from core.tasks import QUEUE, done_channel, enqueue_recognition
from db import processing as rec
from db import recognitions as records
from db.labels import add_label
from db.models import AuditLog, InputFormat, LabelSource, Recognition
from services.removal import remove_doodles
from tests.fixtures.players import ensure_player
from workers.objects import write_objects, writes_for
from workers.recognize import recognize_batch
from workers.runtime import WorkerRuntime

CIRCLE = [[[10, 50, 90, 50, 10], [50, 10, 50, 90, 50]]]


def png_bytes() -> bytes:
    image = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(image).ellipse((8, 8, 56, 56), outline=0, width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def post(
    sessions: sessionmaker[Session], player: str, *, store: bool = True, png: bool = False
) -> uuid.UUID:
    new = records.NewRecognition(
        input_format=InputFormat.png if png else InputFormat.simplified,
        payload=None if png else CIRCLE,
        payload_png=png_bytes() if png else None,
        word="circle",
        player_id=player,
        consent=records.ConsentGrant("v1", store=store, train=store),
    )
    with sessions.begin() as s:
        ensure_player(s, player)
        return records.insert_recognition(s, new, trusted=True).id


def test_removes_rows_lines_pngs_and_redis_keeping_other_players(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    sessions = worker_runtime.sessions
    mine, theirs = post(sessions, "p-mine"), post(sessions, "p-theirs")
    mine_png = post(sessions, "p-mine", png=True)
    recognize_batch(worker_runtime, [mine, theirs, mine_png])
    assert worker_runtime.objects.flush()
    with sessions.begin() as s:
        add_label(s, mine, "circle", LabelSource.reviewer, "admin:x")
        s.add(AuditLog(actor="admin:x", action="review.label", subject=f"recognition:{mine}"))
        segment = s.get(Recognition, mine).strokes_key
        png_key = s.get(Recognition, mine_png).png_key
        assert segment == s.get(Recognition, theirs).strokes_key  # one segment, two players
    storage = worker_runtime.storage
    assert storage.exists(png_key)
    assert redis_client.exists(done_channel(mine), done_channel(mine_png)) == 2  # handed over
    queued = post(sessions, "p-mine", store=False)
    enqueue_recognition(redis_client, queued)
    enqueue_recognition(redis_client, theirs)

    counts = remove_doodles(worker_runtime, redis_client, [mine, mine_png, queued])

    assert counts["recognitions"] == 3 and counts["labels"] == 1
    assert counts["segment_lines"] == 1 and counts["objects_deleted"] == 1
    assert counts["results"] == 2 and counts["queued_messages"] == 1
    assert counts["audit_rows_redacted"] == 1
    left = [d["id"] for d in segments.decode(storage.get(segment))]
    assert left == [str(theirs)]
    assert not storage.exists(png_key)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Recognition)) == 1
        assert s.scalar(select(AuditLog.subject)) == "recognition:erased"
    assert not redis_client.exists(done_channel(mine))
    (message,) = redis_client.lrange(QUEUE, 0, -1)
    body = base64.b64decode(__import__("json").loads(message)["body"])
    assert str(theirs).encode() in body

    # Idempotent: a second call finds nothing more to do.
    assert sum(remove_doodles(worker_runtime, redis_client, [mine, mine_png, queued]).values()) == 0


def test_a_removed_doodle_finished_meanwhile_is_neither_answered_nor_stored(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    sessions = worker_runtime.sessions
    doodle = post(sessions, "p-racing")
    with worker_runtime.autocommit.connect() as conn:
        claimed = rec.claim_batch(conn, [doodle])
    assert len(claimed) == 1  # running on a worker
    remove_doodles(worker_runtime, redis_client, [doodle])
    report = recognize_batch(worker_runtime, [doodle])
    assert worker_runtime.objects.flush()
    assert report.done == 0
    assert list(worker_runtime.storage.list("segments/")) == []
    assert not redis_client.exists(done_channel(doodle))


def test_a_late_segment_write_leaves_out_the_removed_doodles(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    """The writer comes after the erasure: it re-reads which doodles still exist."""
    sessions = worker_runtime.sessions
    gone, kept = post(sessions, "p-gone"), post(sessions, "p-kept")
    with sessions.begin() as s:
        s.execute(
            text("UPDATE recognitions SET status = 'done', strokes_key = 'segments/x.ndjson'")
        )
    kept_rows = [
        rec.KeptDoodle(i, p, InputFormat.simplified, CIRCLE, None, "segments/x.ndjson", None)
        for i, p in ((gone, "p-gone"), (kept, "p-kept"))
    ]
    writes = writes_for(kept_rows)
    remove_doodles(worker_runtime, redis_client, [gone])

    stored = write_objects(
        worker_runtime.storage, worker_runtime.autocommit, worker_runtime.storage_pause, writes
    )

    assert stored == 1
    data = worker_runtime.storage.get("segments/x.ndjson")
    assert [d["id"] for d in segments.decode(data)] == [str(kept)]
    assert b"p-gone" not in data


def test_the_erasure_waits_for_a_writer_holding_the_segment(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    """The writer goes first and holds the key's lock: the erasure waits for it, then
    rewrites the segment it wrote."""
    sessions = worker_runtime.sessions
    gone, kept = post(sessions, "p-gone"), post(sessions, "p-kept")
    key = "segments/y.ndjson"
    with sessions.begin() as s:
        s.execute(text("UPDATE recognitions SET status = 'done', strokes_key = :k"), {"k": key})
    kept_rows = [
        rec.KeptDoodle(i, p, InputFormat.simplified, CIRCLE, None, key, None)
        for i, p in ((gone, "p-gone"), (kept, "p-kept"))
    ]
    storage = worker_runtime.storage
    slow_put = threading.Event()
    real_put = storage.put

    def put_slowly(*args: object, **kwargs: object) -> None:
        slow_put.set()
        time.sleep(0.5)
        real_put(*args, **kwargs)  # type: ignore[arg-type]

    storage.put = put_slowly  # type: ignore[method-assign]
    writer = threading.Thread(
        target=write_objects,
        args=(
            storage,
            worker_runtime.autocommit,
            worker_runtime.storage_pause,
            writes_for(kept_rows),
        ),
    )
    writer.start()
    assert slow_put.wait(5)
    storage.put = real_put  # type: ignore[method-assign]
    remove_doodles(worker_runtime, redis_client, [gone])
    writer.join(5)

    data = storage.get(key)
    assert [d["id"] for d in segments.decode(data)] == [str(kept)]
