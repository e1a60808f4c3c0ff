"""The worker's batch logic against real Postgres, Redis and S3: idempotency, isolation of
bad doodles, attempts, the sweeper, deferred objects and reloads."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update

from core import segments
from core.storage import StorageUnavailable
from core.tasks import RECOGNITION_WAIT_KEY, done_channel
from db import recognitions as rec
from db import registry
from db.models import InputFormat, Recognition, RecognitionStatus
from db.registry import Alias
from ml.artifacts import ArtifactCorrupt
from ml.network import seed_classes, seed_weights_path
from ml.raster import rasterize
from tests.fixtures.app import import_version
from tests.fixtures.players import ensure_player
from workers import objects
from workers.recognize import recognize_batch, store_pending, sweep

KEEP = rec.ConsentGrant(version="2026-11", store=True, train=True)


def _queue(session_factory, drawing, **kw) -> uuid.UUID:
    with session_factory.begin() as s:
        new = rec.NewRecognition(input_format=InputFormat.simplified, payload=drawing, **kw)
        ensure_player(s, new.player_id)
        return rec.insert_recognition(s, new, trusted=True).id


def _row(session_factory, rid: uuid.UUID) -> Recognition:
    with session_factory() as s:
        row = s.get(Recognition, rid)
        assert row is not None
        return row


def test_a_batch_is_recognised_in_one_pass_and_waiters_get_the_result(
    db_session_factory, worker_runtime, sample_drawings, seed_version, redis_client
):
    words = ["tree", "star", "apple", "cup"]
    ids = [_queue(db_session_factory, sample_drawings[w][0]["drawing"]) for w in words]
    report = recognize_batch(worker_runtime, ids)
    assert (report.done, report.failed, report.skipped) == (4, 0, 0)
    for word, rid in zip(words, ids, strict=True):
        row = _row(db_session_factory, rid)
        assert row.status is RecognitionStatus.done and row.label == word
        assert row.attempts == 1 and row.timings["batch"] == 4
        assert row.payload is None  # no consent: the row forgets the strokes
        # The waiting request gets the whole result, without reading the row.
        result = json.loads(redis_client.lpop(done_channel(rid)))
        assert result["status"] == "done" and result["prediction"]["label"] == word
        assert result["model_version"] == seed_version and result["stored"] is False
    # The API sheds live guesses on how long recognitions wait: the batch says so.
    assert float(redis_client.get(RECOGNITION_WAIT_KEY)) >= 0


def test_running_twice_or_concurrently_records_one_result(
    db_session_factory, worker_runtime, sample_drawings, seed_version, redis_client
):
    rid = _queue(db_session_factory, sample_drawings["tree"][0]["drawing"])
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: recognize_batch(worker_runtime, [rid]), range(4)))
    assert sum(r.done for r in reports) == 1
    assert sum(r.skipped for r in reports) == 3
    assert recognize_batch(worker_runtime, [rid]).skipped == 1
    row = _row(db_session_factory, rid)
    assert row.status is RecognitionStatus.done and row.label == "tree"
    # Duplicates of a doodle in progress or done do not count as attempts.
    assert row.attempts == 1
    assert redis_client.llen(done_channel(rid)) == 1


def test_one_unreadable_drawing_fails_alone(
    db_session_factory, worker_runtime, sample_drawings, seed_version
):
    good = [_queue(db_session_factory, sample_drawings["star"][i]["drawing"]) for i in range(3)]
    bad = _queue(db_session_factory, [[["a", "b"], [1, 2]]])
    report = recognize_batch(worker_runtime, [good[0], bad, *good[1:]])
    assert (report.done, report.failed) == (3, 1)
    row = _row(db_session_factory, bad)
    assert row.status is RecognitionStatus.failed and row.error.startswith("unreadable drawing")
    assert row.payload is None and row.attempts == 1
    assert all(_row(db_session_factory, g).status is RecognitionStatus.done for g in good)


def test_a_doodle_abandoned_by_a_dead_worker_is_retried_alone_then_given_up(
    db_session_factory, worker_runtime, sample_drawings, seed_version, settings
):
    rid = _queue(db_session_factory, sample_drawings["tree"][0]["drawing"])
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.lease_seconds + 1)

    def abandon(attempts: int) -> None:
        with db_session_factory.begin() as s:
            s.execute(
                update(Recognition)
                .where(Recognition.id == rid)
                .values(status=RecognitionStatus.running, started_at=long_ago, attempts=attempts)
            )

    # Running under a live lease: another worker is on it, nothing happens.
    abandon(1)
    with db_session_factory.begin() as s:
        s.execute(update(Recognition).values(started_at=dt.datetime.now(dt.UTC)))
    assert recognize_batch(worker_runtime, [rid]).skipped == 1
    # Lease expired: claimed again, the attempt counts, and it is finished.
    abandon(1)
    assert recognize_batch(worker_runtime, [rid]).done == 1
    assert _row(db_session_factory, rid).attempts == 2
    # A doodle that killed its worker max_attempts times is given up on.
    abandon(settings.max_attempts)
    with db_session_factory.begin() as s:
        s.execute(update(Recognition).values(status=RecognitionStatus.running))
    assert recognize_batch(worker_runtime, [rid]).failed == 1
    row = _row(db_session_factory, rid)
    assert row.status is RecognitionStatus.failed and "gave up" in row.error


def test_sweeper_resends_lost_and_abandoned_work_only(
    db_session_factory, worker_runtime, sample_drawings, settings, redis_client
):
    lost = _queue(db_session_factory, sample_drawings["tree"][0]["drawing"])
    fresh = _queue(db_session_factory, sample_drawings["tree"][1]["drawing"])
    abandoned = _queue(db_session_factory, sample_drawings["tree"][2]["drawing"])
    now = dt.datetime.now(dt.UTC)
    past_lease = now - dt.timedelta(seconds=settings.lease_seconds + 1)
    with db_session_factory.begin() as s:
        s.execute(update(Recognition).where(Recognition.id == lost).values(enqueued_at=past_lease))
        s.execute(
            update(Recognition)
            .where(Recognition.id == abandoned)
            .values(status=RecognitionStatus.running, started_at=past_lease, enqueued_at=past_lease)
        )
    sent: list[uuid.UUID] = []
    # Nothing waits in the broker, so a doodle queued longer than a lease was lost.
    assert redis_client.llen("recognitions") == 0
    assert sweep(worker_runtime, sent.append).resent == 2
    assert sorted(sent) == sorted([lost, abandoned])
    # Just resent: the next sweep leaves them alone.
    assert sweep(worker_runtime, sent.append).resent == 0
    assert fresh not in sent
    # With a backlog in the broker, queued doodles are given the stale delay instead.
    redis_client.rpush("recognitions", b"x")
    with db_session_factory.begin() as s:
        s.execute(update(Recognition).where(Recognition.id == lost).values(enqueued_at=past_lease))
    assert sweep(worker_runtime, sent.append).resent == 0


def test_objects_wait_out_a_storage_outage(
    db_session_factory, worker_runtime, sample_drawings, seed_version, monkeypatch, redis_client
):
    drawing = sample_drawings["star"][0]["drawing"]
    rid = _queue(db_session_factory, drawing, player_id="p-1", consent=KEEP)

    def down(*_a, **_k):
        raise StorageUnavailable("storage is down")

    monkeypatch.setattr(worker_runtime.storage, "put", down)
    assert recognize_batch(worker_runtime, [rid]).done == 1
    assert worker_runtime.objects.flush()
    # Answered and recorded all the same; the strokes stay in the row.
    assert json.loads(redis_client.lpop(done_channel(rid)))["status"] == "done"
    row = _row(db_session_factory, rid)
    assert row.status is RecognitionStatus.done and row.attempts == 1
    assert row.payload == drawing and row.stored_at is None
    assert row.bitmap == rasterize(drawing).tobytes()
    decided = row.strokes_key  # where it will go, committed before the first try
    assert decided is not None and decided.startswith("segments/")
    # Storage back: the sweeper writes the object once the pause and lease have passed.
    monkeypatch.undo()
    assert worker_runtime.storage_pause.active
    assert store_pending(worker_runtime) == 0  # paused: not even tried
    worker_runtime.storage_pause.clear()
    with db_session_factory.begin() as s:
        s.execute(
            update(Recognition).values(
                finished_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            )
        )
    assert store_pending(worker_runtime) == 1
    row = _row(db_session_factory, rid)
    assert row.stored_at is not None and row.payload is None
    assert row.strokes_key == decided  # a retried write never leaves a stray copy
    assert list(worker_runtime.storage.list("segments/")) == [decided]
    assert segments.find(worker_runtime.storage.get(decided), rid)["drawing"] == drawing
    assert store_pending(worker_runtime) == 0


def test_a_batchs_kept_doodles_go_to_one_segment(
    db_session_factory, worker_runtime, sample_drawings, seed_version
):
    drawings = [sample_drawings[w][0]["drawing"] for w in ("cup", "leaf", "hat")]
    kept = [
        _queue(db_session_factory, d, player_id=f"p{i}", consent=KEEP)
        for i, d in enumerate(drawings)
    ]
    not_kept = _queue(db_session_factory, drawings[0])
    assert recognize_batch(worker_runtime, [*kept, not_kept]).done == 4
    assert worker_runtime.objects.flush()
    rows = [_row(db_session_factory, rid) for rid in kept]
    (key,) = {r.strokes_key for r in rows}
    assert all(r.stored_at is not None and r.payload is None for r in rows)
    assert list(worker_runtime.storage.list("segments/")) == [key]
    lines = list(segments.decode(worker_runtime.storage.get(key)))
    assert [(d["id"], d["player_id"], d["drawing"]) for d in lines] == [
        (str(rid), f"p{i}", d) for i, (rid, d) in enumerate(zip(kept, drawings, strict=True))
    ]
    assert _row(db_session_factory, not_kept).strokes_key is None


def test_batches_finished_close_together_share_a_segment(
    db_session_factory, worker_runtime, sample_drawings, seed_version, monkeypatch
):
    # The writer gathers for 0.1 s in production; the test's batches are slower than that.
    monkeypatch.setattr(objects, "WRITE_EVERY_SECONDS", 3.0)
    drawings = [sample_drawings[w][0]["drawing"] for w in ("cup", "leaf", "hat")]
    ids = [
        _queue(db_session_factory, d, player_id=f"p{i}", consent=KEEP)
        for i, d in enumerate(drawings)
    ]
    for rid in ids:  # three batches of one, as a worker sees them at low load
        assert recognize_batch(worker_runtime, [rid]).done == 1
    assert worker_runtime.objects.flush()
    keys = {_row(db_session_factory, rid).strokes_key for rid in ids}
    assert len(keys) == 1 and list(worker_runtime.storage.list("segments/")) == list(keys)
    written = {d["id"] for d in segments.decode(worker_runtime.storage.get(keys.pop()))}
    assert written == {str(rid) for rid in ids}


def test_model_cache_follows_the_production_alias(
    db_session_factory, worker_runtime, settings, seed_version
):
    assert worker_runtime.models.current().version_id == seed_version
    second = import_version(
        settings, seed_weights_path().read_bytes(), seed_classes(), source="copy"
    )
    with db_session_factory.begin() as s:
        registry.move_alias(s, Alias.PRODUCTION, second, actor="test")
    # check_seconds is 0 in the test settings: the next call sees the move.
    assert worker_runtime.models.current().version_id == second


def test_corrupt_weights_are_refused(db_session_factory, worker_runtime, settings, seed_version):
    with db_session_factory() as s:
        version = registry.get_alias(s, Alias.PRODUCTION)
        key = version.artifact_key
    worker_runtime.storage.put(key, b"not the weights")
    with pytest.raises(ArtifactCorrupt):
        worker_runtime.models.current()
    assert hashlib.sha256(b"not the weights").hexdigest() not in key


def test_bitmap_is_kept_only_with_consent_to_store(
    db_session_factory, worker_runtime, sample_drawings, seed_version
):
    drawing = sample_drawings["star"][0]["drawing"]
    kept = _queue(db_session_factory, drawing, player_id="p-store", consent=KEEP)
    dropped = _queue(
        db_session_factory,
        drawing,
        player_id="p-nostore",
        consent=rec.ConsentGrant(version="2026-11", store=False, train=False),
    )
    anonymous = _queue(db_session_factory, drawing)
    assert recognize_batch(worker_runtime, [kept, dropped, anonymous]).done == 3
    assert worker_runtime.objects.flush()
    with db_session_factory() as s:
        row = s.get(Recognition, kept)
        assert row.bitmap == rasterize(drawing).tobytes()
        assert len(row.bitmap) == 28 * 28
        assert s.get(Recognition, dropped).bitmap is None
        assert s.get(Recognition, anonymous).bitmap is None
        assert s.scalar(select(Recognition.stored_at).where(Recognition.id == kept)) is not None
