"""Typed settings, read once from the environment (twelve-factor).

Each setting is declared once, as a field of `Settings`: its type, its default, and
(through `env(...)`) the variable that sets it and the parser that reads it.
`Settings.from_env()` walks those fields; it only reads variables, never opens a
connection. A variable unset or blank keeps the default; a URL left unset means the
embedded service (see `devtools.embedded`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from core.png import DEFAULT_MAX_BIT_DEPTH as DEFAULT_PNG_MAX_BIT_DEPTH
from core.png import DEFAULT_MAX_PIXELS as DEFAULT_PNG_MAX_PIXELS
from core.rates import Rate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Default rate limits (frozen, so shared safely as defaults).
_PER_KEY_RATE = Rate(300, 1)
_AUTH_FAILURE_RATE = Rate(20, 60)
# Larger PNGs are refused unread (decompression bombs), by the API and by the worker alike.
MAX_PNG_SIDE = 4096

# The key, in a field's metadata, of the environment variable that sets it.
ENV_VARIABLE = "env_variable"
_PARSER = "parser"

Parsed = TypeVar("Parsed")
Default = TypeVar("Default")


class ConfigError(ValueError):
    """An environment variable that cannot work; the message names it (never its secret)."""


def env(variable: str, parse: Callable[[str], Parsed], default: Default) -> Parsed | Default:
    """A field set by the environment `variable`, read by `parse` (which raises ValueError
    with the words that follow the variable's name in the error, e.g. "must be ...").

    Typed so that mypy checks both the parser's result and the default against the field.
    """
    return field(default=default, metadata={ENV_VARIABLE: variable, _PARSER: parse})


# Parsers: each takes the variable's value, already stripped and never blank.


def _text(raw: str) -> str:
    return raw


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"must be an integer, got {raw!r}") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw!r}") from None


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _rate(raw: str) -> Rate | None:
    try:
        return Rate.parse(raw)
    except ValueError as exc:
        raise ValueError(f"is not a rate: {exc}") from None


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return raw

    return parse


def _url(check: Callable[[str], object]) -> Callable[[str], str]:
    """The URL, checked for form (no I/O); the message never repeats it, as it may hold a
    password."""

    def parse(raw: str) -> str:
        try:
            check(raw)
        except ValueError as exc:
            raise ValueError(f"is not usable: {exc}") from None
        return raw

    return parse


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


# `env(...)` returns a dataclasses.field; ruff's RUF009 recognises only `field` itself, so
# the fields whose type it cannot tell is immutable (Path, Rate) say noqa.
@dataclass(frozen=True)
class Settings:
    """Everything the processes need to know, in one immutable object."""

    # Where embedded services keep their data and the local object folder lives.
    home: Path = env("DOODLE_HOME", Path, PROJECT_ROOT / "var")  # noqa: RUF009
    # None means "start / reuse the embedded one" (devtools.embedded resolves them).
    database_url: str | None = env("DATABASE_URL", _url(_check_database_url), None)
    redis_url: str | None = env("REDIS_URL", _url(_check_redis_url), None)
    storage_url: str | None = env("STORAGE_URL", _url(_check_storage_url), None)
    client_keys: tuple[str, ...] = env("DOODLE_CLIENT_KEYS", _csv, ())
    admin_tokens: tuple[str, ...] = env("DOODLE_ADMIN_TOKENS", _csv, ())
    # Reviewers label, confirm and discard doodles; admins can do that and more (api.auth).
    reviewer_tokens: tuple[str, ...] = env("DOODLE_REVIEWER_TOKENS", _csv, ())
    port: int = env("PORT", _int, 8000)
    # Slow clients (cli.http_worker): a request's head and body must arrive within these
    # seconds, or 408; one address holds at most this many connections of an API process
    # (0: no limit, e.g. behind a proxy that limits), or 429.
    api_header_timeout: float = env("DOODLE_API_HEADER_TIMEOUT", _float, 10.0)
    api_body_timeout: float = env("DOODLE_API_BODY_TIMEOUT", _float, 15.0)
    api_connections_per_address: int = env("DOODLE_API_CONNECTIONS_PER_ADDRESS", _int, 256)
    # Rate limits (api.rate_limits): a client key's recognitions and guesses, and failed
    # authentications from one address; None is no limit.
    rate_recognitions: Rate | None = env(  # noqa: RUF009
        "DOODLE_RATE_RECOGNITIONS", _rate, _PER_KEY_RATE
    )
    rate_guesses: Rate | None = env(  # noqa: RUF009
        "DOODLE_RATE_GUESSES", _rate, _PER_KEY_RATE
    )
    rate_auth_failures: Rate | None = env(  # noqa: RUF009
        "DOODLE_RATE_AUTH_FAILURES", _rate, _AUTH_FAILURE_RATE
    )
    # Request limits: bad input gets a 4xx, never a 500 or a hang.
    max_body_bytes: int = env("DOODLE_MAX_BODY_BYTES", _int, 1_000_000)
    max_strokes: int = env("DOODLE_MAX_STROKES", _int, 200)
    max_points: int = env("DOODLE_MAX_POINTS", _int, 20_000)
    # PNG bodies: refused from their header, by the API and the worker, beyond these decoded
    # pixels (width x height) or bits a sample (core.png).
    png_max_pixels: int = env("DOODLE_PNG_MAX_PIXELS", _int, DEFAULT_PNG_MAX_PIXELS)
    png_max_bit_depth: int = env("DOODLE_PNG_MAX_BIT_DEPTH", _int, DEFAULT_PNG_MAX_BIT_DEPTH)
    # Not from the environment: fixed parts of the API's published contract (the OpenAPI
    # document states them).
    max_coordinate: float = 100_000.0
    max_wait_seconds: float = 10.0
    # Bounded waits on Postgres (db.session.DatabaseTimeouts), by role: the API answers
    # 503 + Retry-After within about two seconds when Postgres is down or frozen; workers
    # and flows run longer statements. A statement timeout is Postgres' statement_timeout
    # (0: none); the client gives up on a silent server that plus the reply margin later.
    # After one silence the API refuses connections for the cooldown (an instant 503).
    db_connect_timeout_seconds: float = env("DOODLE_DB_CONNECT_TIMEOUT_SECONDS", _float, 2.0)
    db_reply_margin_seconds: float = env("DOODLE_DB_REPLY_MARGIN_SECONDS", _float, 0.25)
    api_db_statement_timeout_seconds: float = env(
        "DOODLE_API_DB_STATEMENT_TIMEOUT_SECONDS", _float, 1.5
    )
    api_db_lock_timeout_seconds: float = env("DOODLE_API_DB_LOCK_TIMEOUT_SECONDS", _float, 1.0)
    api_db_pool_timeout_seconds: float = env("DOODLE_API_DB_POOL_TIMEOUT_SECONDS", _float, 1.0)
    api_db_cooldown_seconds: float = env("DOODLE_API_DB_COOLDOWN_SECONDS", _float, 1.0)
    worker_db_statement_timeout_seconds: float = env(
        "DOODLE_WORKER_DB_STATEMENT_TIMEOUT_SECONDS", _float, 60.0
    )
    worker_db_lock_timeout_seconds: float = env(
        "DOODLE_WORKER_DB_LOCK_TIMEOUT_SECONDS", _float, 10.0
    )
    flow_db_statement_timeout_seconds: float = env(
        "DOODLE_FLOW_DB_STATEMENT_TIMEOUT_SECONDS", _float, 3600.0
    )
    flow_db_lock_timeout_seconds: float = env("DOODLE_FLOW_DB_LOCK_TIMEOUT_SECONDS", _float, 60.0)
    # Redis: a dead server is found within the connect timeout; a reply may take the longest
    # Prefer: wait (max_wait_seconds, the BLPOP's own bound) plus this margin.
    redis_connect_timeout_seconds: float = env("DOODLE_REDIS_CONNECT_TIMEOUT_SECONDS", _float, 2.0)
    redis_reply_margin_seconds: float = env("DOODLE_REDIS_REPLY_MARGIN_SECONDS", _float, 2.0)
    # Ports of the embedded services (make run / make test on a bare machine).
    embedded_postgres_port: int = env("DOODLE_EMBEDDED_POSTGRES_PORT", _int, 5439)
    embedded_redis_port: int = env("DOODLE_EMBEDDED_REDIS_PORT", _int, 6390)
    # Worker behaviour.
    worker_concurrency: int = env("DOODLE_WORKER_CONCURRENCY", _int, 2)
    # Celery's execution pool. solo: batches run in the process that reads the messages (no
    # hand-over to a pool; measured cheapest a doodle); scale out with more worker
    # processes. prefork or threads use `worker_concurrency`.
    worker_pool: str = env("DOODLE_WORKER_POOL", _choice("solo", "prefork", "threads"), "solo")
    # Celery's prefetch multiplier, for the tasks Celery runs (the sweeper, erasures);
    # recognitions and live guesses are popped by the batch consumers (workers.consumer).
    worker_prefetch: int = env("DOODLE_WORKER_PREFETCH", _int, 32)
    # Micro-batches: a worker takes what is waiting, up to this many doodles (or live
    # guesses), as one batch at once (workers.consumer).
    batch_size: int = env("DOODLE_BATCH_SIZE", _int, 32)
    task_soft_time_limit: int = env("DOODLE_TASK_SOFT_TIME_LIMIT", _int, 30)
    # How often a worker checks whether the production alias moved (and reloads).
    model_check_seconds: float = env("DOODLE_MODEL_CHECK_SECONDS", _float, 2.0)
    # A running doodle whose worker has not finished it this long after claiming it is
    # presumed abandoned (its worker died) and sent again.
    lease_seconds: float = env("DOODLE_LEASE_SECONDS", _float, 5.0)
    # How often the sweeper looks for abandoned or lost work and unwritten objects.
    sweep_seconds: float = env("DOODLE_SWEEP_SECONDS", _float, 2.0)
    # Queued recognitions not picked up this long after being sent are sent again.
    sweeper_stale_seconds: int = env("DOODLE_SWEEPER_STALE_SECONDS", _int, 60)
    # Times a doodle may be claimed by workers that died holding it before it is failed.
    max_attempts: int = env("DOODLE_MAX_ATTEMPTS", _int, 3)
    # After an object-storage failure, workers leave writes to the sweeper this long.
    storage_retry_seconds: float = env("DOODLE_STORAGE_RETRY_SECONDS", _float, 5.0)
    # Live guesses: how long the API waits for one, and when it sheds them (429): more
    # than this many guesses, or recognitions, waiting in the broker, or stored
    # recognitions waiting longer than this for a worker (the last batch's median).
    guess_timeout_seconds: float = env("DOODLE_GUESS_TIMEOUT_SECONDS", _float, 1.0)
    guess_max_queue: int = env("DOODLE_GUESS_MAX_QUEUE", _int, 16)
    guess_shed_backlog: int = env("DOODLE_GUESS_SHED_BACKLOG", _int, 32)
    guess_shed_wait_ms: float = env("DOODLE_GUESS_SHED_WAIT_MS", _float, 25.0)
    # Relabelling: when the model's opinion turns a prompt word into a training label.
    # The model agrees with the prompt at least this much; it sees another known word at
    # least this much.
    relabel_accept_confidence: float = env("DOODLE_RELABEL_ACCEPT_CONFIDENCE", _float, 0.8)
    relabel_reject_confidence: float = env("DOODLE_RELABEL_REJECT_CONFIDENCE", _float, 0.8)
    # A known prompt the model gives less than this probability goes to review (a scribble,
    # a drawing of another word). A new word's doodles are judged against the word's other
    # drawings once it has this many; outliers sit below the group's median cosine by more
    # than this many robust standard deviations (flows/relabel.py, ml/agreement.py).
    relabel_doubt_probability: float = env("DOODLE_RELABEL_DOUBT_PROBABILITY", _float, 0.2)
    relabel_min_group: int = env("DOODLE_RELABEL_MIN_GROUP", _int, 8)
    relabel_outlier_fence: float = env("DOODLE_RELABEL_OUTLIER_FENCE", _float, 2.5)
    # Less ink than this (of 28x28) is a near-empty doodle; more than the maximum a scribble.
    min_ink_fraction: float = env("DOODLE_MIN_INK_FRACTION", _float, 0.01)
    max_ink_fraction: float = env("DOODLE_MAX_INK_FRACTION", _float, 0.6)
    # Training and the promotion gate.
    new_word_min_examples: int = env("DOODLE_NEW_WORD_MIN_EXAMPLES", _int, 12)
    golden_fraction: float = env("DOODLE_GOLDEN_FRACTION", _float, 0.2)
    replay_per_word: int = env("DOODLE_REPLAY_PER_WORD", _int, 200)
    train_epochs: int = env("DOODLE_TRAIN_EPOCHS", _int, 12)
    train_seed: int = env("DOODLE_TRAIN_SEED", _int, 1234)
    # True: learn new words without touching the old words' outputs (see ml.train); it
    # learns them poorly (scripts/learning_bench.py), so every linear layer trains by default.
    train_new_rows_only: bool = env("DOODLE_TRAIN_NEW_ROWS_ONLY", _bool, False)
    # The gate (ml.gate): falls of the old words' top-1 it tolerates unless the paired
    # evidence (p < alpha) says they are larger; a new word's minimum top-1 on its test
    # drawings; whether a candidate adding no word must be significantly better.
    gate_max_word_drop: float = env("DOODLE_GATE_MAX_WORD_DROP", _float, 0.02)
    gate_max_overall_drop: float = env("DOODLE_GATE_MAX_OVERALL_DROP", _float, 0.01)
    gate_alpha: float = env("DOODLE_GATE_ALPHA", _float, 0.05)
    gate_require_gain: bool = env("DOODLE_GATE_REQUIRE_GAIN", _bool, True)
    new_word_min_top1: float = env("DOODLE_NEW_WORD_MIN_TOP1", _float, 0.6)
    flywheel_cron: str = env("DOODLE_FLYWHEEL_CRON", _text, "0 3 * * *")
    # Cycles started by data (flows/trigger.py): the trigger looks every POLL seconds and
    # starts a cycle once this many new labels arrived since the last one started.
    flywheel_min_new_labels: int = env("DOODLE_FLYWHEEL_MIN_NEW_LABELS", _int, 200)
    flywheel_poll_seconds: int = env("DOODLE_FLYWHEEL_POLL_SECONDS", _int, 60)
    # Flow runs (relabel, training, evaluation) yield the CPU to serving on a shared host
    # (flows.context.yield_cpu_to_serving): this niceness (0-19; 0: as started), Linux's
    # SCHED_IDLE policy (serving preempts them at once on waking), and at most this many
    # torch threads; while the rest of the machine is busy, training runs at most this share
    # of the time (flows.throttle; 1: flat out).
    flow_nice: int = env("DOODLE_FLOW_NICE", _int, 10)
    flow_sched_idle: bool = env("DOODLE_FLOW_SCHED_IDLE", _bool, True)
    flow_torch_threads: int = env("DOODLE_FLOW_TORCH_THREADS", _int, 1)
    flow_train_duty: float = env("DOODLE_FLOW_TRAIN_DUTY", _float, 0.25)
    # The Prefect server (API and UI) that `doodle run` starts, and `doodle flows` looks
    # for when PREFECT_API_URL is unset.
    prefect_port: int = env("DOODLE_PREFECT_PORT", _int, 4200)
    # Metrics (api/metrics.py): the folder the processes' counters share (None: home/metrics),
    # an optional bearer token /metrics asks for, and worker heartbeats: a worker counts as
    # alive for three beats after its last. /readyz is 503 while fewer live workers than
    # ready_min_workers consume recognitions, or guesses (0: ready without any worker).
    metrics_dir: Path | None = env("DOODLE_METRICS_DIR", Path, None)  # noqa: RUF009
    metrics_token: str | None = env("DOODLE_METRICS_TOKEN", _text, None)
    worker_heartbeat_seconds: float = env("DOODLE_WORKER_HEARTBEAT_SECONDS", _float, 5.0)
    ready_min_workers: int = env("DOODLE_READY_MIN_WORKERS", _int, 1)
    # Players' rights. Erasure receipts name a player by a keyed hash of the id, with this
    # key (None: a random key kept in home/receipt.key). Stored doodles older than the
    # retention are deleted by a scheduled flow (0: kept until erased). Weights of versions
    # trained on erased doodles are deleted once nothing in service, nor the alias
    # history's last entries, points at them.
    receipt_key: str | None = env("DOODLE_RECEIPT_KEY", _text, None)
    retention_days: int = env("DOODLE_RETENTION_DAYS", _int, 365)
    retention_cron: str = env("DOODLE_RETENTION_CRON", _text, "30 3 * * *")
    # How long a client's Idempotency-Key answers for its first request (after that the key
    # may make something new; the retention flow prunes it).
    idempotency_ttl_hours: float = env("DOODLE_IDEMPOTENCY_TTL_HOURS", _float, 24.0)
    erased_weights_history: int = env("DOODLE_ERASED_WEIGHTS_HISTORY", _int, 3)
    # After erasures, tables up to this size (MB, with indexes and TOAST) are rewritten
    # (VACUUM FULL: writes wait on the table meanwhile, about 6 s a 400 MB here) so their
    # files keep nothing erased; larger ones get a plain VACUUM (services.erasure_scrub).
    erasure_rewrite_max_mb: int = env("DOODLE_ERASURE_REWRITE_MAX_MB", _int, 256)
    # The admin page's (/admin) login sessions: the key that signs their cookie (None: a
    # random key kept in home/session.key) and how long one lasts without a new login.
    session_key: str | None = env("DOODLE_SESSION_KEY", _text, None)
    session_hours: float = env("DOODLE_SESSION_HOURS", _float, 12.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment gives; ConfigError names a variable that cannot work."""
        environ = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in fields(cls):
            variable = setting.metadata.get(ENV_VARIABLE)
            raw = (environ.get(variable) or "").strip() if variable else ""
            if not raw:
                continue  # unset or blank: the default
            try:
                values[setting.name] = setting.metadata[_PARSER](raw)
            except ValueError as exc:
                raise ConfigError(f"{variable} {exc}") from None
        return cls(**values)

    def with_services(self, **changes: object) -> Settings:
        """A copy with some fields replaced (used once embedded services are resolved)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    # Derived values: computed from the fields above, never set on their own.
    @property
    def task_time_limit(self) -> int:
        """Hard limit of a task: past it, a 'running' doodle's worker is presumed dead."""
        return self.task_soft_time_limit + 10

    # Resolved URLs: callers use these after devtools.embedded.EmbeddedServices filled the blanks.
    @property
    def db_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not resolved; enter devtools.embedded.EmbeddedServices first"
            )
        return self.database_url

    @property
    def broker_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError(
                "REDIS_URL is not resolved; enter devtools.embedded.EmbeddedServices first"
            )
        return self.redis_url

    @property
    def metrics_path(self) -> Path:
        return self.metrics_dir or self.home / "metrics"

    @property
    def object_store_url(self) -> str:
        return self.storage_url or (self.home / "objects").as_uri()
