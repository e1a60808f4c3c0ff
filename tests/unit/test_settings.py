"""Settings.from_env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings


def test_defaults_mean_embedded() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.home == PROJECT_ROOT / "var"
    assert s.database_url is None
    assert s.redis_url is None
    assert s.storage_url is None
    assert s.client_keys == ()
    assert s.admin_tokens == ()
    assert s.port == 8000
    assert s.embedded_postgres_port == 5439
    assert s.embedded_redis_port == 6390


def test_empty_values_count_as_unset() -> None:
    s = Settings.from_env(
        {"DATABASE_URL": "", "REDIS_URL": "", "STORAGE_URL": "", "PORT": "", "DOODLE_HOME": ""}
    )
    assert s == Settings()


def test_urls_and_home(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "DOODLE_HOME": str(tmp_path),
            "DATABASE_URL": "postgresql://root@127.0.0.1:5432/test",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "STORAGE_URL": "s3://k:s@minio:9000/doodles",
        }
    )
    assert s.home == tmp_path
    assert s.db_url == "postgresql://root@127.0.0.1:5432/test"
    assert s.broker_url == "redis://127.0.0.1:6379/0"
    assert s.object_store_url == "s3://k:s@minio:9000/doodles"


def test_csv_keys_are_trimmed_and_blanks_dropped() -> None:
    s = Settings.from_env(
        {"DOODLE_CLIENT_KEYS": " key-a, key-b,,  ,key-c ", "DOODLE_ADMIN_TOKENS": "tok"}
    )
    assert s.client_keys == ("key-a", "key-b", "key-c")
    assert s.admin_tokens == ("tok",)


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("PORT", "port", 9001),
        ("DOODLE_MAX_BODY_BYTES", "max_body_bytes", 2048),
        ("DOODLE_MAX_STROKES", "max_strokes", 7),
        ("DOODLE_MAX_POINTS", "max_points", 99),
        ("DOODLE_EMBEDDED_POSTGRES_PORT", "embedded_postgres_port", 15439),
        ("DOODLE_EMBEDDED_REDIS_PORT", "embedded_redis_port", 16390),
        ("DOODLE_WORKER_CONCURRENCY", "worker_concurrency", 4),
        ("DOODLE_TASK_SOFT_TIME_LIMIT", "task_soft_time_limit", 12),
        ("DOODLE_SWEEPER_STALE_SECONDS", "sweeper_stale_seconds", 5),
        ("DOODLE_BATCH_SIZE", "batch_size", 8),
        ("DOODLE_GUESS_MAX_QUEUE", "guess_max_queue", 3),
        ("DOODLE_GUESS_SHED_BACKLOG", "guess_shed_backlog", 9),
    ],
)
def test_integers(name: str, field: str, value: int) -> None:
    assert getattr(Settings.from_env({name: str(value)}), field) == value


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("DOODLE_LEASE_SECONDS", "lease_seconds", 7.5),
        ("DOODLE_SWEEP_SECONDS", "sweep_seconds", 0.5),
        ("DOODLE_STORAGE_RETRY_SECONDS", "storage_retry_seconds", 3.0),
        ("DOODLE_GUESS_TIMEOUT_SECONDS", "guess_timeout_seconds", 0.25),
        ("DOODLE_GUESS_SHED_WAIT_MS", "guess_shed_wait_ms", 40.0),
    ],
)
def test_numbers(name: str, field: str, value: float) -> None:
    assert getattr(Settings.from_env({name: str(value)}), field) == value


def test_worker_pool() -> None:
    assert Settings().worker_pool == "solo"
    assert Settings.from_env({"DOODLE_WORKER_POOL": "prefork"}).worker_pool == "prefork"
    with pytest.raises(ValueError, match="DOODLE_WORKER_POOL"):
        Settings.from_env({"DOODLE_WORKER_POOL": "gevent"})


@pytest.mark.parametrize("name", ["PORT", "DOODLE_MAX_STROKES", "DOODLE_EMBEDDED_REDIS_PORT"])
@pytest.mark.parametrize("raw", ["abc", "8000.5", "12x"])
def test_bad_integer_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        Settings.from_env({name: raw})
    assert repr(raw) in str(info.value)


def test_unresolved_urls_raise() -> None:
    s = Settings.from_env({})
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        _ = s.db_url
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        _ = s.broker_url


def test_local_objects_default_to_home(tmp_path: Path) -> None:
    s = Settings.from_env({"DOODLE_HOME": str(tmp_path)})
    assert s.object_store_url == (tmp_path / "objects").as_uri()


def test_with_services_returns_a_copy() -> None:
    s = Settings.from_env({})
    t = s.with_services(database_url="postgresql://x@h/db")
    assert t.database_url == "postgresql://x@h/db"
    assert s.database_url is None


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert Settings.from_env().port == 8123


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DATABASE_URL", "mysql://root:hunter2@db/test"),
        ("DATABASE_URL", "postgresql://root:hunter2@db:5432"),
        ("DATABASE_URL", "not a url hunter2"),
        ("REDIS_URL", "http://:hunter2@cache:6379/0"),
        ("REDIS_URL", "redis://:hunter2@cache:port/0"),
        ("STORAGE_URL", "s3://key:hunter2@/bucket"),
        ("STORAGE_URL", "ftp://key:hunter2@files/bucket"),
        ("STORAGE_URL", "file://relative/hunter2"),
    ],
)
def test_an_unusable_url_names_its_variable_and_not_its_secret(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} is not usable: ") as error:
        Settings.from_env({name: raw})
    assert "hunter2" not in str(error.value)


def test_usable_urls_pass() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+psycopg://root:pw@127.0.0.1:5432/test",
            "REDIS_URL": "rediss://:pw@cache:6380/2",
            "STORAGE_URL": "s3://key:secret@minio:9000/doodles?secure=false",
        }
    )
    assert settings.database_url == "postgresql+psycopg://root:pw@127.0.0.1:5432/test"
    assert settings.redis_url == "rediss://:pw@cache:6380/2"


def test_rates() -> None:
    from core.rates import Rate

    defaults = Settings.from_env({})
    assert str(defaults.rate_recognitions) == "300/second"
    assert str(defaults.rate_auth_failures) == "20/minute"
    settings = Settings.from_env(
        {
            "DOODLE_RATE_RECOGNITIONS": " 50 / minute ",
            "DOODLE_RATE_GUESSES": "off",
            "DOODLE_RATE_AUTH_FAILURES": "100/hour",
        }
    )
    assert settings.rate_recognitions == Rate(50, 60)
    assert settings.rate_guesses is None
    assert settings.rate_auth_failures == Rate(100, 3600)
    for bad in ("50", "0/second", "5/day", "-1/second", "lots"):
        with pytest.raises(ValueError, match=r"^DOODLE_RATE_GUESSES is not a rate: expected"):
            Settings.from_env({"DOODLE_RATE_GUESSES": bad})
