"""A player's erasure (services.erasure): the request, the work under a lease, the
receipt; a crash half-way is finished by a resend; and the proof: after erasing a
player who has doodles in every store, no store holds the player id or a doodle id."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid

import pytest
import redis
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from core.tasks import MAINTENANCE_QUEUE, enqueue_recognition
from db import recognitions as records
from db.labels import add_label
from db.models import (
    AuditLog,
    Consent,
    InputFormat,
    LabelSource,
    ModelVersion,
    ModelVersionExample,
    Player,
    Recognition,
    Review,
)
from db.players import create_player
from services import erasure as erasures
from services import removal
from services.errors import UnknownPlayer
from tests.integration.test_erasure_removal import CIRCLE, post
from workers.recognize import recognize_batch, resend_erasures
from workers.runtime import WorkerRuntime

PLAYER = "erase-me-7f3a"
OTHER = "keep-me-91bc"


def _player_doodles(runtime: WorkerRuntime, redis_client: redis.Redis) -> list[uuid.UUID]:
    """The player's doodles in every store: a segment shared with another player, a PNG
    object, result lists, a queued message, a label, a review, an audit row, lineage."""
    sessions = runtime.sessions
    strokes, png = post(sessions, PLAYER), post(sessions, PLAYER, png=True)
    theirs = post(sessions, OTHER)
    recognize_batch(runtime, [strokes, png, theirs])
    assert runtime.objects.flush()
    queued = post(sessions, PLAYER)
    enqueue_recognition(redis_client, queued)
    with sessions.begin() as s:
        assert s.get(Recognition, strokes).stored_at is not None
        assert s.get(Recognition, png).png_key
        add_label(s, strokes, "circle", LabelSource.reviewer, "admin:x")
        s.add(Review(recognition_id=png, reason="near_empty"))
        s.add(AuditLog(actor="admin:x", action="review.label", subject=f"recognition:{strokes}"))
        s.add(AuditLog(actor="admin:x", action="player.export", subject=f"player:{PLAYER}"))
        version = s.scalar(select(ModelVersion.id))
        s.add(ModelVersionExample(model_version_id=version, recognition_id=strokes))
    return [strokes, png, queued]


def _request(runtime: WorkerRuntime) -> erasures.Erasure:
    return erasures.request_erasure(runtime, PLAYER, "player").erasure


def _texts(sessions: sessionmaker[Session]) -> dict[str, str]:
    """A pg_dump-like text of every table: {table: its rows as text}."""
    with sessions() as s:
        tables = s.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).all()
        return {
            t: "\n".join(s.scalars(text(f'SELECT CAST(t AS text) FROM "{t}" AS t')).all())
            for t in tables
        }


def _values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key) or b""]
    if kind == "list":
        return list(client.lrange(key, 0, -1))
    if kind == "hash":
        return [b"%s=%s" % kv for kv in client.hgetall(key).items()]
    if kind == "set":
        return list(client.smembers(key))
    if kind == "zset":
        return list(client.zrange(key, 0, -1))
    raise AssertionError(f"a Redis {kind} the search cannot read")


def _redis_texts(client: redis.Redis) -> list[bytes]:
    """Every key and value, task messages' bodies decoded."""
    out: list[bytes] = []
    for key in client.scan_iter():
        out.append(key)
        for value in _values(client, key):
            out.append(value)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                out.append(base64.b64decode(json.loads(value)["body"]))
    return out


def test_after_the_erasure_no_store_holds_the_player_or_their_doodles(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    doodles = _player_doodles(worker_runtime, redis_client)
    needles = [PLAYER, *map(str, doodles)]
    # Every store holds something of the player before: the search can find them.
    before_db = "\n".join(_texts(worker_runtime.sessions).values())
    assert all(n in before_db for n in needles)
    before_objects = b"".join(
        k.encode() + worker_runtime.storage.get(k) for k in worker_runtime.storage.list("")
    )
    assert PLAYER.encode() in before_objects and str(doodles[1]).encode() in before_objects
    before_redis = b"\n".join(_redis_texts(redis_client))
    assert str(doodles[0]).encode() in before_redis and str(doodles[2]).encode() in before_redis

    requested = _request(worker_runtime)
    done = erasures.work_erasure(worker_runtime, redis_client, requested.public_id)

    assert done is not None and done.done
    for table, dump in _texts(worker_runtime.sessions).items():
        for needle in needles:
            assert needle not in dump, f"{needle} left in table {table}"
    for key in worker_runtime.storage.list(""):
        data = key.encode() + worker_runtime.storage.get(key)
        for needle in needles:
            assert needle.encode() not in data, f"{needle} left in object {key}"
    for value in _redis_texts(redis_client):
        for needle in needles:
            assert needle.encode() not in value, f"{needle} left in Redis"
    # The other player's doodle is untouched, in its segment.
    with worker_runtime.sessions() as s:
        (kept,) = s.scalars(select(Recognition).where(Recognition.player_id == OTHER)).all()
        assert OTHER.encode() in worker_runtime.storage.get(kept.strokes_key)
        version = s.get(ModelVersion, seed_version)
        assert version.erased_data_at is not None
        assert version.dataset_manifest["removed"] == {"erasure": 1}
        # The audit row about the player names their keyed ref.
        subjects = s.scalars(select(AuditLog.subject)).all()
        assert f"player:{done.player_ref}" in subjects

    receipt = done.document()["receipt"]
    assert receipt["model_versions"] == [seed_version]
    deleted = receipt["deleted"]
    assert deleted["recognitions"] == 3 and deleted["players"] == 1
    assert deleted["consents"] == 1 and deleted["labels"] == 1 and deleted["reviews"] == 1
    assert deleted["objects_deleted"] == 1 and deleted["segment_lines"] == 1
    assert deleted["queued_messages"] == 1 and deleted["results"] == 2
    assert PLAYER not in json.dumps(done.document())


def test_the_request_is_idempotent_and_answers_with_the_receipt_once_done(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    post(worker_runtime.sessions, PLAYER)
    first = erasures.request_erasure(worker_runtime, PLAYER, "player")
    again = erasures.request_erasure(worker_runtime, PLAYER, "admin:abc")
    assert first.created and not again.created
    assert again.erasure.public_id == first.erasure.public_id
    assert first.erasure.status == "pending" and "receipt" not in first.erasure.document()

    erasures.work_erasure(worker_runtime, redis_client, first.erasure.public_id)
    # Worked already: another copy of the message does nothing.
    assert erasures.work_erasure(worker_runtime, redis_client, first.erasure.public_id) is None
    after = erasures.request_erasure(worker_runtime, PLAYER, "player")
    assert not after.created and after.erasure.public_id == first.erasure.public_id
    assert after.erasure.done and after.erasure.document()["receipt"]["deleted"]["players"] == 1
    with pytest.raises(UnknownPlayer):
        erasures.request_erasure(worker_runtime, "never-seen", "admin:abc")


def test_an_erasure_that_dies_half_way_is_resent_and_finished(
    worker_runtime: WorkerRuntime,
    seed_version: int,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doodles = [post(worker_runtime.sessions, PLAYER) for _ in range(3)]
    recognize_batch(worker_runtime, doodles)
    assert worker_runtime.objects.flush()
    requested = _request(worker_runtime)
    calls = []
    real = removal.remove_doodles

    def dies_on_the_second_batch(*args: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError(f"killed while erasing {PLAYER}")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(erasures, "BATCH", 1)
    monkeypatch.setattr(erasures, "remove_doodles", dies_on_the_second_batch)
    with pytest.raises(RuntimeError):
        erasures.work_erasure(worker_runtime, redis_client, requested.public_id)

    state = erasures.get_erasure(worker_runtime, requested.public_id)
    assert state.status == "pending" and state.deleted["recognitions"] == 1
    assert state.last_error == "RuntimeError on attempt 1"  # never the message's text
    monkeypatch.setattr(erasures, "remove_doodles", real)
    # A worker killed outright leaves its lease: once it runs out, the sweeper resends.
    with worker_runtime.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE erasures SET requested_at = now() - interval '1 hour', "
                "lease_until = now() - interval '1 second'"
            )
        )
    resent: list[uuid.UUID] = []
    assert resend_erasures(worker_runtime, resent.append) == 1
    assert resent == [requested.public_id]
    done = erasures.work_erasure(worker_runtime, redis_client, requested.public_id)

    assert done is not None and done.done and done.attempts == 2
    assert done.deleted["recognitions"] == 3 and done.deleted["segment_lines"] == 3
    assert done.last_error is None
    assert list(worker_runtime.storage.list("segments/")) == []
    assert resend_erasures(worker_runtime, resent.append) == 0


def test_the_sweeper_sends_pending_erasures_to_the_maintenance_queue(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    from workers.recognize import sweep

    post(worker_runtime.sessions, PLAYER)
    requested = _request(worker_runtime)
    with worker_runtime.engine.begin() as conn:
        conn.execute(text("UPDATE erasures SET requested_at = now() - interval '1 hour'"))
    report = sweep(worker_runtime, lambda rid: None)
    assert report.erasures == 1
    (message,) = redis_client.lrange(MAINTENANCE_QUEUE, 0, -1)
    args = json.loads(base64.b64decode(json.loads(message)["body"]))[0]
    assert args == [str(requested.public_id)]


def test_doodles_without_consent_to_store_never_reach_object_storage(
    worker_runtime: WorkerRuntime, seed_version: int
) -> None:
    sessions = worker_runtime.sessions
    doodles = [post(sessions, PLAYER, store=False), post(sessions, PLAYER, store=False, png=True)]
    recognize_batch(worker_runtime, doodles)
    assert worker_runtime.objects.flush()
    assert [k for k in worker_runtime.storage.list("") if not k.startswith("models/")] == []
    with sessions() as s:
        for doodle in doodles:
            row = s.get(Recognition, doodle)
            assert row.status.value == "done"
            assert row.payload is None and row.payload_png is None and row.bitmap is None
            assert row.strokes_key is None and row.png_key is None and row.stored_at is None


def test_a_player_posting_again_after_the_erasure_starts_from_nothing(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    sessions = worker_runtime.sessions
    post(sessions, PLAYER)
    with sessions() as s:
        old = s.get(Player, PLAYER)
        old_created, old_secret = old.created_at, old.secret_hash
    requested = _request(worker_runtime)
    erasures.work_erasure(worker_runtime, redis_client, requested.public_id)
    again = records.NewRecognition(
        input_format=InputFormat.simplified,
        payload=CIRCLE,
        player_id=PLAYER,
        consent=records.ConsentGrant("v2", store=False, train=False),
    )
    with sessions.begin() as s:
        # The erased id is no player any more: nothing names it, whoever sends it...
        with pytest.raises(records.PlayerNotProven):
            records.insert_recognition(s, again)
        # ...until a player is made with it again (ids are the server's: only a tool can).
        create_player(s, PLAYER)
        records.insert_recognition(s, again, trusted=True)
    with sessions() as s:
        player = s.get(Player, PLAYER)
        assert player is not None and player.created_at > old_created
        assert player.secret_hash is None or player.secret_hash != old_secret
        consents = s.scalars(select(Consent).where(Consent.player_id == PLAYER)).all()
        assert [c.version for c in consents] == ["v2"]
        assert len(s.scalars(select(Recognition)).all()) == 1
