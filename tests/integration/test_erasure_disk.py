"""An erasure reaches the disk: after it and its scrub (services.erasure_scrub), the files of
the database's tables (read from the server's data directory) and Redis' append-only file
and snapshot hold neither the player id nor their doodles' ids.

Reads the Postgres server's files, so the test must run on its machine as a user who may
read them (root here); a server it cannot read fails the test, saying so. Redis is a
private redis-server (the embedded one, with an append-only file, as `doodle run` starts)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from core.tasks import enqueue_recognition
from db.labels import add_label
from db.models import AuditLog, InputFormat, LabelSource
from db.players import create_player
from db.recognitions import NewRecognition, create_recognition
from devtools.net import free_port
from devtools.redis_server import EmbeddedRedis
from services import erasure as erasures
from services import erasure_scrub
from tests.fixtures.redis import TEST_DB, with_db
from workers.recognize import recognize_batch
from workers.runtime import WorkerRuntime

REWRITE_TIMEOUT = 60.0
PLAYER = "erase-me-on-disk-5d1c"
CIRCLE = [[[10, 50, 90, 50, 10], [50, 10, 50, 90, 50]]]


def post(runtime: WorkerRuntime, player: str) -> uuid.UUID:
    """A kept doodle of `player` (made with their consent if they are new)."""
    with runtime.sessions.begin() as s:
        if not s.execute(text("SELECT 1 FROM players WHERE id = :p"), {"p": player}).first():
            create_player(s, player, ("v1", True, True))
        new = NewRecognition(
            input_format=InputFormat.simplified, payload=CIRCLE, word="circle", player_id=player
        )
        return create_recognition(s, new).id


def _player_doodles(runtime: WorkerRuntime, redis_client: redis.Redis) -> list[uuid.UUID]:
    """The player's doodles in the tables and in Redis: recognised ones (their results
    wait in Redis), a queued one (its task message), a label and audit rows."""
    done = [post(runtime, PLAYER), post(runtime, PLAYER)]
    recognize_batch(runtime, done)
    assert runtime.objects.flush()
    queued = post(runtime, PLAYER)
    enqueue_recognition(redis_client, queued)
    with runtime.sessions.begin() as s:
        add_label(s, done[0], "circle", LabelSource.reviewer, "admin:x")
        s.add(AuditLog(actor="admin:x", action="review.label", subject=f"recognition:{done[0]}"))
        s.add(AuditLog(actor="admin:x", action="player.export", subject=f"player:{PLAYER}"))
    return [*done, queued]


def _redis_texts(client: redis.Redis) -> list[bytes]:
    """Every key, and every value of the strings and lists (what our keys are)."""
    out: list[bytes] = []
    for key in client.scan_iter():
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"list":
            out.extend(client.lrange(key, 0, -1))
        else:
            out.append(repr(client.dump(key)).encode())
    return out


@pytest.fixture(scope="module")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-aof"), port=free_port())
    base, _ = server.up()
    client = redis.Redis.from_url(base)
    # Plain strings in the snapshot and the AOF's snapshot preamble: what a search can see.
    client.config_set("rdbcompression", "no")
    client.close()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url(embedded_redis: EmbeddedRedis) -> str:
    return with_db(embedded_redis.url(), TEST_DB)


def _relation_files(worker_runtime: WorkerRuntime) -> dict[Path, str]:
    """Every file of the database's own tables, their TOAST and their indexes, by the
    relation's name (after a checkpoint, so what is in shared buffers is on disk too)."""
    autocommit = worker_runtime.engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        conn.execute(text("CHECKPOINT"))
        datadir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        rows = conn.execute(
            text(
                "SELECT pg_relation_filepath(c.oid) AS path, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN (current_schema(), 'pg_toast') "
                "AND c.relkind IN ('r', 'i', 't', 'm') "
                "AND pg_relation_filepath(c.oid) IS NOT NULL"
            )
        ).all()
    names = {datadir / r.path: r.relname for r in rows}
    if not datadir.is_dir() or not any(p.exists() for p in names):
        pytest.fail(
            f"cannot read the Postgres server's files under {datadir}: this test reads "
            "them, so it must run on the server's machine as a user who may (e.g. root); "
            "a remote server cannot be checked this way"
        )
    files: dict[Path, str] = {}
    for path, name in names.items():  # a relation over 1 GB continues in path.1, path.2...
        for f in [path, *path.parent.glob(path.name + ".*")]:
            if f.is_file():
                files[f] = name
    return files


def _found(files: dict[Path, str], needles: dict[str, bytes]) -> dict[str, list[str]]:
    """{needle's name: the relations (or files) holding it}."""
    found: dict[str, list[str]] = {}
    for path, name in files.items():
        data = path.read_bytes()
        for needle_name, needle in needles.items():
            if needle in data:
                found.setdefault(needle_name, []).append(name)
    return found


def _needles(doodles: list[uuid.UUID]) -> dict[str, bytes]:
    """The player id, and each doodle id as text and as Postgres stores a uuid (16 bytes)."""
    needles = {"player": PLAYER.encode()}
    for i, doodle in enumerate(doodles):
        needles[f"doodle {i}"] = str(doodle).encode()
        needles[f"doodle {i} (uuid bytes)"] = doodle.bytes
    return needles


def _redis_files(server: EmbeddedRedis) -> dict[Path, str]:
    files = [p for p in server.datadir.rglob("*") if p.is_file() and ".aof" in p.name]
    return {p: p.name for p in [*files, *server.datadir.glob("*.rdb")]}


def _wait_for_rewrites(client: redis.Redis) -> None:
    deadline = time.monotonic() + REWRITE_TIMEOUT
    while time.monotonic() < deadline:
        info = client.info("persistence")
        busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")
        if not any(int(info.get(flag, 0)) for flag in busy):
            return
        time.sleep(0.05)
    raise AssertionError(f"Redis still rewriting its files after {REWRITE_TIMEOUT}s")


def _scrub_until_complete(
    runtime: WorkerRuntime, redis_client: redis.Redis
) -> erasure_scrub.ScrubReport:
    """Scrub; again while something is left over (an autovacuum's ANALYZE may hold a
    snapshot from before the erasure for a moment), as the erasure task does."""
    deadline = time.monotonic() + REWRITE_TIMEOUT
    while True:
        report = erasure_scrub.scrub_erased_data(runtime, redis_client)
        assert report is not None
        _wait_for_rewrites(redis_client)
        if report.complete:
            return report
        assert time.monotonic() < deadline, f"the scrub never completed: {report}"
        time.sleep(0.2)


def test_after_the_erasure_and_its_scrub_no_file_holds_the_player(
    worker_runtime: WorkerRuntime,
    seed_version: int,
    redis_client: redis.Redis,
    embedded_redis: EmbeddedRedis,
) -> None:
    doodles = _player_doodles(worker_runtime, redis_client)
    needles = _needles(doodles)
    text_needles = {k: v for k, v in needles.items() if "uuid bytes" not in k}
    # The searches can find them before: in the tables' files and in the AOF.
    before = _found(_relation_files(worker_runtime), needles)
    assert {"player", "doodle 0 (uuid bytes)"} <= set(before), before
    assert redis_client.info("persistence")["aof_enabled"] == 1
    redis_client.execute_command("BGREWRITEAOF")  # not needed; makes the AOF's name stable
    _wait_for_rewrites(redis_client)
    in_redis = _found(_redis_files(embedded_redis), text_needles)
    assert "doodle 0" in in_redis and "doodle 2" in in_redis, in_redis

    requested = erasures.request_erasure(worker_runtime, PLAYER, "player").erasure
    done = erasures.work_erasure(worker_runtime, redis_client, requested.public_id)
    assert done is not None and done.done
    # Deleted, committed, and still in the files: what the scrub is for.
    assert "player" in _found(_relation_files(worker_runtime), needles)

    report = _scrub_until_complete(worker_runtime, redis_client)
    assert {"recognitions", "players", "audit_log"} <= set(report.rewritten)
    assert "aof" in report.redis

    assert _found(_relation_files(worker_runtime), needles) == {}
    assert _found(_redis_files(embedded_redis), text_needles) == {}
    for value in _redis_texts(redis_client):
        for name, needle in text_needles.items():
            assert needle not in value, f"{name} left in a Redis key"
    # Done once: nothing is owed until the next erasure.
    assert erasure_scrub.scrub_erased_data(worker_runtime, redis_client) is None


def test_a_burst_of_erasures_is_scrubbed_once_when_the_last_is_done(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    for player in ("burst-a", "burst-b"):
        post(worker_runtime, player)
    first = erasures.request_erasure(worker_runtime, "burst-a", "player").erasure
    second = erasures.request_erasure(worker_runtime, "burst-b", "player").erasure
    assert erasures.work_erasure(worker_runtime, redis_client, first.public_id) is not None
    # Another erasure is pending: its worker scrubs for both once it is done.
    assert erasure_scrub.scrub_erased_data(worker_runtime, redis_client) is None
    assert erasures.work_erasure(worker_runtime, redis_client, second.public_id) is not None
    report = _scrub_until_complete(worker_runtime, redis_client)
    assert "players" in report.rewritten
    assert erasure_scrub.scrub_erased_data(worker_runtime, redis_client) is None


# A long report, whose snapshot still sees the player's rows after the erasure; and a
# transaction left open after a write, whose id keeps rows deleted after it from removal.
OLDER_TRANSACTIONS = {
    "snapshot": ("REPEATABLE READ", "SELECT count(*) FROM players"),
    "transaction id": ("READ COMMITTED", "SELECT CAST(txid_current() AS text)"),
}


@pytest.mark.parametrize("holder", OLDER_TRANSACTIONS)
def test_an_older_transaction_holds_the_scrub_back_until_it_ends(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis, holder: str
) -> None:
    doodle = post(worker_runtime, PLAYER)
    needles = _needles([doodle])
    isolation, statement = OLDER_TRANSACTIONS[holder]
    reader = worker_runtime.engine.connect()
    try:
        reader.execute(text(f"SET TRANSACTION ISOLATION LEVEL {isolation}"))
        assert reader.execute(text(statement)).scalar_one()
        requested = erasures.request_erasure(worker_runtime, PLAYER, "player").erasure
        erasures.work_erasure(worker_runtime, redis_client, requested.public_id)
        held = erasure_scrub.scrub_erased_data(worker_runtime, redis_client)
        assert held is not None and not held.complete and held.held_back_by >= 1
        assert held.rewritten == []  # nothing rewritten in vain
        assert "player" in _found(_relation_files(worker_runtime), needles)
    finally:
        reader.close()
    _scrub_until_complete(worker_runtime, redis_client)
    assert _found(_relation_files(worker_runtime), needles) == {}


def test_a_redis_without_an_append_only_file_is_not_asked_to_rewrite_one(
    worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    redis_client.config_set("appendonly", "no")
    saves = redis_client.config_get("save")["save"]
    redis_client.config_set("save", "")
    try:
        post(worker_runtime, "no-aof")
        requested = erasures.request_erasure(worker_runtime, "no-aof", "player").erasure
        erasures.work_erasure(worker_runtime, redis_client, requested.public_id)
        report = _scrub_until_complete(worker_runtime, redis_client)
        assert report.redis == [] and "players" in report.rewritten
        assert redis_client.info("persistence")["aof_rewrite_scheduled"] == 0
    finally:
        redis_client.config_set("save", saves)
        redis_client.config_set("appendonly", "yes")
        _wait_for_rewrites(redis_client)


def test_tables_over_the_size_limit_get_a_plain_vacuum(
    worker_runtime: WorkerRuntime,
    seed_version: int,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 0 MB: every table is over it (an operator who will not have writes wait on a rewrite).
    limited = dataclasses.replace(worker_runtime.settings, erasure_rewrite_max_mb=0)
    monkeypatch.setattr(worker_runtime, "settings", limited)
    post(worker_runtime, "big-tables")
    requested = erasures.request_erasure(worker_runtime, "big-tables", "player").erasure
    erasures.work_erasure(worker_runtime, redis_client, requested.public_id)
    report = _scrub_until_complete(worker_runtime, redis_client)
    assert report.rewritten == [] and report.busy == []
    assert {"recognitions", "players", "erasures"} <= set(report.vacuumed)
