"""Typed settings, read once from the environment (twelve-factor).

Nothing here opens a connection: `Settings.from_env()` only reads variables.
A setting left unset means the embedded default (see `core.embedded`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from core.rates import Rate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Default rate limits (frozen, so shared safely as defaults).
_PER_KEY_RATE = Rate(300, 1)
_AUTH_FAILURE_RATE = Rate(20, 60)
# Larger PNGs are refused unread (decompression bombs), by the API and by the worker alike.
MAX_PNG_SIDE = 4096


class ConfigError(ValueError):
    """An environment variable that cannot work; the message names it (never its secret)."""


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _rate(env: Mapping[str, str], name: str, default: Rate | None) -> Rate | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return Rate.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip() or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _url(env: Mapping[str, str], name: str, check: Callable[[str], object]) -> str | None:
    """The variable's URL, checked for form (no I/O); the message never repeats it, as it
    may hold a password."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        check(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} is not usable: {exc}") from None
    return raw


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError("expected postgresql://user[:password]@host[:port]/database") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres") or not parsed.database:
        raise ValueError("expected postgresql://user[:password]@host[:port]/database")


def _check_redis_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValueError("expected redis://[:password@]host[:port][/db]")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("expected redis://[:password@]host[:port][/db]") from None


def _check_storage_url(url: str) -> None:
    from core.storage import open_storage

    open_storage(url)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Everything the processes need to know, in one immutable object."""

    # Where embedded services keep their data and the local object folder lives.
    home: Path = PROJECT_ROOT / "var"
    # None means "start / reuse the embedded one" (core.embedded resolves them).
    database_url: str | None = None
    redis_url: str | None = None
    storage_url: str | None = None
    client_keys: tuple[str, ...] = ()
    admin_tokens: tuple[str, ...] = ()
    port: int = 8000
    # Rate limits (api.rate_limits): a client key's recognitions and guesses, and failed
    # authentications from one address; None is no limit.
    rate_recognitions: Rate | None = _PER_KEY_RATE
    rate_guesses: Rate | None = _PER_KEY_RATE
    rate_auth_failures: Rate | None = _AUTH_FAILURE_RATE
    # Request limits: bad input gets a 4xx, never a 500 or a hang.
    max_body_bytes: int = 1_000_000
    max_strokes: int = 200
    max_points: int = 20_000
    max_coordinate: float = 100_000.0
    max_wait_seconds: float = 10.0
    # Ports of the embedded services (make run / make test on a bare machine).
    embedded_postgres_port: int = 5439
    embedded_redis_port: int = 6390
    # Worker behaviour.
    worker_concurrency: int = 2
    # Celery's execution pool. solo: batches run in the process that reads the messages (no
    # hand-over to a pool; measured cheapest a doodle); scale out with more worker
    # processes. prefork or threads use `worker_concurrency`.
    worker_pool: str = "solo"
    # Messages a worker process may hold unacknowledged: at least a batch's worth.
    worker_prefetch: int = 32
    # Micro-batches: a worker flushes its buffer at this many doodles, when no more are
    # arriving, or this long after the first one arrived (see workers.batching).
    batch_size: int = 32
    batch_wait_ms: float = 10.0
    task_soft_time_limit: int = 30
    # Unacked messages of a dead worker are redelivered after this many seconds (a
    # backstop: the sweeper finds a dead worker's doodles by their lease long before).
    model_check_seconds: float = 2.0
    # A running doodle whose worker has not finished it this long after claiming it is
    # presumed abandoned (its worker died) and sent again.
    lease_seconds: float = 5.0
    # How often the sweeper looks for abandoned or lost work and unwritten objects.
    sweep_seconds: float = 2.0
    # Queued recognitions not picked up this long after being sent are sent again.
    sweeper_stale_seconds: int = 60
    # Times a doodle may be claimed by workers that died holding it before it is failed.
    max_attempts: int = 3
    # After an object-storage failure, workers leave writes to the sweeper this long.
    storage_retry_seconds: float = 5.0
    # Live guesses: how long the API waits for one, and when it sheds them (429): more
    # than this many guesses, or recognitions, waiting in the broker, or stored
    # recognitions waiting longer than this for a worker (the last batch's median).
    guess_timeout_seconds: float = 1.0
    guess_max_queue: int = 16
    guess_shed_backlog: int = 32
    guess_shed_wait_ms: float = 25.0
    # Relabelling: when the model's opinion turns a prompt word into a training label.
    relabel_accept_confidence: float = 0.5  # model agrees with the prompt at least this much
    relabel_reject_confidence: float = 0.8  # model sees another known word at least this much
    min_ink_fraction: float = 0.01  # less ink than this (of 28x28) is a near-empty doodle
    max_ink_fraction: float = 0.6  # more is a scribble
    # Training and the promotion gate.
    new_word_min_examples: int = 20
    golden_fraction: float = 0.2
    replay_per_word: int = 200
    train_epochs: int = 8
    train_seed: int = 1234
    # Learn new words without touching what the old words' outputs were (see ml.train).
    train_new_rows_only: bool = True
    gate_max_word_drop: float = 0.02
    gate_max_overall_drop: float = 0.0
    flywheel_cron: str = "0 3 * * *"
    # The Prefect server (API and UI) that `doodle run` starts, and `doodle flows` looks
    # for when PREFECT_API_URL is unset.
    prefect_port: int = 4200
    # Metrics (api/metrics.py): the folder the processes' counters share (None: home/metrics),
    # an optional bearer token /metrics asks for, and worker heartbeats: a worker counts as
    # alive for three beats after its last; /readyz is 503 with fewer alive than asked.
    metrics_dir: Path | None = None
    metrics_token: str | None = None
    worker_heartbeat_seconds: float = 5.0
    ready_min_workers: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("DOODLE_HOME") or PROJECT_ROOT / "var")
        defaults = cls()
        return cls(
            home=home,
            database_url=_url(env, "DATABASE_URL", _check_database_url),
            redis_url=_url(env, "REDIS_URL", _check_redis_url),
            storage_url=_url(env, "STORAGE_URL", _check_storage_url),
            client_keys=_csv(env.get("DOODLE_CLIENT_KEYS")),
            admin_tokens=_csv(env.get("DOODLE_ADMIN_TOKENS")),
            port=_int(env, "PORT", defaults.port),
            rate_recognitions=_rate(env, "DOODLE_RATE_RECOGNITIONS", defaults.rate_recognitions),
            rate_guesses=_rate(env, "DOODLE_RATE_GUESSES", defaults.rate_guesses),
            rate_auth_failures=_rate(env, "DOODLE_RATE_AUTH_FAILURES", defaults.rate_auth_failures),
            max_body_bytes=_int(env, "DOODLE_MAX_BODY_BYTES", defaults.max_body_bytes),
            max_strokes=_int(env, "DOODLE_MAX_STROKES", defaults.max_strokes),
            max_points=_int(env, "DOODLE_MAX_POINTS", defaults.max_points),
            embedded_postgres_port=_int(
                env, "DOODLE_EMBEDDED_POSTGRES_PORT", defaults.embedded_postgres_port
            ),
            embedded_redis_port=_int(
                env, "DOODLE_EMBEDDED_REDIS_PORT", defaults.embedded_redis_port
            ),
            worker_concurrency=_int(env, "DOODLE_WORKER_CONCURRENCY", defaults.worker_concurrency),
            worker_pool=_choice(
                env, "DOODLE_WORKER_POOL", defaults.worker_pool, ("solo", "prefork", "threads")
            ),
            task_soft_time_limit=_int(
                env, "DOODLE_TASK_SOFT_TIME_LIMIT", defaults.task_soft_time_limit
            ),
            worker_prefetch=_int(env, "DOODLE_WORKER_PREFETCH", defaults.worker_prefetch),
            batch_size=_int(env, "DOODLE_BATCH_SIZE", defaults.batch_size),
            batch_wait_ms=_float(env, "DOODLE_BATCH_WAIT_MS", defaults.batch_wait_ms),
            lease_seconds=_float(env, "DOODLE_LEASE_SECONDS", defaults.lease_seconds),
            sweep_seconds=_float(env, "DOODLE_SWEEP_SECONDS", defaults.sweep_seconds),
            storage_retry_seconds=_float(
                env, "DOODLE_STORAGE_RETRY_SECONDS", defaults.storage_retry_seconds
            ),
            guess_timeout_seconds=_float(
                env, "DOODLE_GUESS_TIMEOUT_SECONDS", defaults.guess_timeout_seconds
            ),
            guess_max_queue=_int(env, "DOODLE_GUESS_MAX_QUEUE", defaults.guess_max_queue),
            guess_shed_backlog=_int(env, "DOODLE_GUESS_SHED_BACKLOG", defaults.guess_shed_backlog),
            max_attempts=_int(env, "DOODLE_MAX_ATTEMPTS", defaults.max_attempts),
            model_check_seconds=_float(
                env, "DOODLE_MODEL_CHECK_SECONDS", defaults.model_check_seconds
            ),
            relabel_accept_confidence=_float(
                env, "DOODLE_RELABEL_ACCEPT_CONFIDENCE", defaults.relabel_accept_confidence
            ),
            relabel_reject_confidence=_float(
                env, "DOODLE_RELABEL_REJECT_CONFIDENCE", defaults.relabel_reject_confidence
            ),
            min_ink_fraction=_float(env, "DOODLE_MIN_INK_FRACTION", defaults.min_ink_fraction),
            max_ink_fraction=_float(env, "DOODLE_MAX_INK_FRACTION", defaults.max_ink_fraction),
            new_word_min_examples=_int(
                env, "DOODLE_NEW_WORD_MIN_EXAMPLES", defaults.new_word_min_examples
            ),
            golden_fraction=_float(env, "DOODLE_GOLDEN_FRACTION", defaults.golden_fraction),
            replay_per_word=_int(env, "DOODLE_REPLAY_PER_WORD", defaults.replay_per_word),
            train_epochs=_int(env, "DOODLE_TRAIN_EPOCHS", defaults.train_epochs),
            train_seed=_int(env, "DOODLE_TRAIN_SEED", defaults.train_seed),
            train_new_rows_only=_bool(
                env, "DOODLE_TRAIN_NEW_ROWS_ONLY", defaults.train_new_rows_only
            ),
            gate_max_word_drop=_float(
                env, "DOODLE_GATE_MAX_WORD_DROP", defaults.gate_max_word_drop
            ),
            gate_max_overall_drop=_float(
                env, "DOODLE_GATE_MAX_OVERALL_DROP", defaults.gate_max_overall_drop
            ),
            flywheel_cron=env.get("DOODLE_FLYWHEEL_CRON") or defaults.flywheel_cron,
            prefect_port=_int(env, "DOODLE_PREFECT_PORT", defaults.prefect_port),
            metrics_dir=Path(env["DOODLE_METRICS_DIR"]) if env.get("DOODLE_METRICS_DIR") else None,
            metrics_token=env.get("DOODLE_METRICS_TOKEN") or None,
            worker_heartbeat_seconds=_float(
                env, "DOODLE_WORKER_HEARTBEAT_SECONDS", defaults.worker_heartbeat_seconds
            ),
            ready_min_workers=_int(env, "DOODLE_READY_MIN_WORKERS", defaults.ready_min_workers),
            sweeper_stale_seconds=_int(
                env, "DOODLE_SWEEPER_STALE_SECONDS", defaults.sweeper_stale_seconds
            ),
        )

    def with_services(self, **changes: object) -> Settings:
        """A copy with some fields replaced (used once embedded services are resolved)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def task_time_limit(self) -> int:
        """Hard limit of a task: past it, a 'running' doodle's worker is presumed dead."""
        return self.task_soft_time_limit + 10

    # Resolved URLs: callers use these after core.embedded.EmbeddedServices filled the blanks.
    @property
    def db_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not resolved; enter core.embedded.EmbeddedServices first"
            )
        return self.database_url

    @property
    def broker_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError(
                "REDIS_URL is not resolved; enter core.embedded.EmbeddedServices first"
            )
        return self.redis_url

    @property
    def metrics_path(self) -> Path:
        return self.metrics_dir or self.home / "metrics"

    @property
    def object_store_url(self) -> str:
        return self.storage_url or (self.home / "objects").as_uri()
