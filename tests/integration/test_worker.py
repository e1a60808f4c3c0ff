"""The worker's logic against real Postgres, Redis and S3: idempotency, the sweeper, reloads."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import update

from cli.models import import_model
from db import recognitions as rec
from db import registry
from db.models import InputFormat, Recognition, RecognitionStatus
from ml.artifacts import ArtifactCorrupt
from ml.network import seed_classes, seed_weights_path
from workers.recognize import recognize, sweep_stale
from workers.signatures import done_channel


def _queue(session_factory, drawing, **kw) -> uuid.UUID:
    with session_factory.begin() as s:
        new = rec.NewRecognition(input_format=InputFormat.simplified, payload=drawing, **kw)
        return rec.create_recognition(s, new).id


def test_running_twice_or_concurrently_records_one_result(
    db_session_factory, worker_runtime, settings, sample_drawings, seed_version, redis_client
):
    rid = _queue(db_session_factory, sample_drawings["tree"][0]["drawing"])
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: recognize(worker_runtime, rid), range(4)))
    assert "done" in statuses and set(statuses) <= {"done", "busy"}
    assert recognize(worker_runtime, rid) == "done"
    with db_session_factory() as s:
        row = s.get(Recognition, rid)
        assert row.status is RecognitionStatus.done and row.label == "tree"
        # Duplicates of a doodle in progress do not count as attempts.
        assert row.attempts == 1
    # Waiters are woken.
    assert redis_client.llen(done_channel(rid)) >= 1


def test_unreadable_payload_fails_cleanly(db_session_factory, worker_runtime, seed_version):
    rid = _queue(db_session_factory, [[["a", "b"], [1, 2]]])
    assert recognize(worker_runtime, rid) == "failed"
    with db_session_factory() as s:
        row = s.get(Recognition, rid)
        assert row.status is RecognitionStatus.failed
        assert row.error.startswith("unreadable drawing")
        assert row.payload is None


def test_a_doodle_that_keeps_crashing_workers_is_given_up(
    db_session_factory, worker_runtime, sample_drawings, seed_version, settings
):
    rid = _queue(db_session_factory, sample_drawings["tree"][0]["drawing"])
    with db_session_factory.begin() as s:
        s.execute(update(Recognition).values(attempts=settings.max_attempts))
    assert recognize(worker_runtime, rid) == "failed"
    with db_session_factory() as s:
        assert "gave up" in s.get(Recognition, rid).error


def test_sweeper_re_enqueues_only_long_silent_work(
    db_session_factory, worker_runtime, sample_drawings, settings
):
    old = _queue(db_session_factory, sample_drawings["tree"][0]["drawing"])
    fresh = _queue(db_session_factory, sample_drawings["tree"][1]["drawing"])
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.sweeper_stale_seconds + 5)
    with db_session_factory.begin() as s:
        s.execute(update(Recognition).where(Recognition.id == old).values(enqueued_at=long_ago))
    sent: list[uuid.UUID] = []
    assert sweep_stale(worker_runtime, sent.append) == 1
    assert sent == [old]
    # Just re-enqueued: the next sweep leaves it alone.
    assert sweep_stale(worker_runtime, sent.append) == 0
    assert fresh not in sent


def test_model_cache_follows_the_production_alias(
    db_session_factory, worker_runtime, settings, seed_version
):
    assert worker_runtime.models.current().version_id == seed_version
    second = import_model(
        settings, seed_weights_path().read_bytes(), seed_classes(), alias=None, source="copy"
    )
    with db_session_factory.begin() as s:
        registry.move_alias(s, "production", int(second["version"]), actor="test")
    # check_seconds is 0 in the test settings: the next call sees the move.
    assert worker_runtime.models.current().version_id == second["version"]


def test_corrupt_weights_are_refused(db_session_factory, worker_runtime, settings, seed_version):
    with db_session_factory() as s:
        version = registry.get_alias(s, "production")
        key = version.artifact_key
    worker_runtime.storage.put(key, b"not the weights")
    with pytest.raises(ArtifactCorrupt):
        worker_runtime.models.current()
    assert hashlib.sha256(b"not the weights").hexdigest() not in key


def test_bitmap_is_kept_only_with_consent_to_store(
    db_session_factory, worker_runtime, sample_drawings, seed_version
):
    from ml.raster import rasterize

    drawing = sample_drawings["star"][0]["drawing"]
    kept = _queue(
        db_session_factory,
        drawing,
        player_id="p-store",
        consent=rec.ConsentGrant(version="2026-11", store=True, train=False),
    )
    dropped = _queue(
        db_session_factory,
        drawing,
        player_id="p-nostore",
        consent=rec.ConsentGrant(version="2026-11", store=False, train=False),
    )
    anonymous = _queue(db_session_factory, drawing)
    for rid in (kept, dropped, anonymous):
        assert recognize(worker_runtime, rid) == "done"
    with db_session_factory() as s:
        row = s.get(Recognition, kept)
        assert row.bitmap == rasterize(drawing).tobytes()
        assert len(row.bitmap) == 28 * 28
        assert s.get(Recognition, dropped).bitmap is None
        assert s.get(Recognition, anonymous).bitmap is None
