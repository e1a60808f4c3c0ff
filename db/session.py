"""Engines and session factories. Nothing is created at import time.

Callers own their transactions::

    engine = make_engine(settings.db_url)
    factory = make_session_factory(engine)
    with factory.begin() as s:
        registry.move_alias(s, Alias.PRODUCTION, 3, actor="flow:promote")

Helpers in `db` take a `Session` and never commit; the `with` block above does.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import monotonic
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

DRIVER_SCHEME = "postgresql+psycopg"
_PLAIN_SCHEMES = ("postgresql", "postgres")

# A web or worker process rarely needs more than a handful of connections at once;
# Postgres' default max_connections (100) is shared by every replica.
DEFAULT_POOL = {
    "pool_size": 5,
    "max_overflow": 5,
    "pool_timeout": 30,
    "pool_recycle": 1800,
}
# A pooled connection idle longer than this is pinged before use (one in constant use is
# not: under load, SQLAlchemy's ping on every checkout was a round trip per request).
IDLE_PING_SECONDS = 1.0
# TCP keepalives and tcp_user_timeout find a peer that is gone (a dead host, a cut network);
# a stopped server's kernel still answers them, which the reply deadline below covers.
KEEPALIVE_ARGS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,  # ms
}


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long a process waits on Postgres; each role (API, worker, flow) has its own.

    `statement_seconds` and `lock_seconds` are Postgres' statement_timeout and lock_timeout
    (0: none): the server cancels a slow statement itself. A server that does not answer at
    all (stopped, swapping, a frozen disk) cannot cancel anything, so the client also gives
    up on any reply after `statement_seconds + reply_margin_seconds` and closes the
    connection. `cooldown_seconds` > 0: once the server went silent, connections are refused
    at once for that long (an API answers 503 at once instead of each request waiting).
    """

    connect_seconds: float = 2.0  # libpq and psycopg round anything below 2 up to 2
    statement_seconds: float = 0.0
    lock_seconds: float = 0.0
    reply_margin_seconds: float = 0.25
    checkout_seconds: float = 30.0
    cooldown_seconds: float = 0.0

    @property
    def reply_seconds(self) -> float | None:
        """The longest wait for any reply of the server; None: no limit."""
        if self.statement_seconds <= 0:
            return None
        return self.statement_seconds + self.reply_margin_seconds

    def connect_args(self) -> dict[str, Any]:
        options = [f"-c statement_timeout={round(self.statement_seconds * 1000)}"]
        options.append(f"-c lock_timeout={round(self.lock_seconds * 1000)}")
        return {
            "connect_timeout": max(1, round(self.connect_seconds)),
            "options": " ".join(options),
            **KEEPALIVE_ARGS,
        }


class DatabaseSilent(psycopg.OperationalError):
    """Postgres did not answer in time: the caller answers 503, as for any outage."""


class SilenceGuard:
    """Shared by a process's engines: after Postgres went silent, refuses connections for
    `cooldown` seconds (then the next request tries again)."""

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self._until = 0.0

    def trip(self) -> None:
        if self.cooldown > 0:
            self._until = monotonic() + self.cooldown

    def check(self) -> None:
        if monotonic() < self._until:
            raise DatabaseSilent("the database did not answer a moment ago; try again shortly")


class ReplyDeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most `reply_seconds` for any reply of the server.

    psycopg waits for every reply (a statement's, a commit's, a ping's) in `wait`; past the
    deadline the connection is closed, which SQLAlchemy sees as a disconnection (the pool
    drops it) and the caller as an OperationalError.
    """

    reply_seconds: float | None = None
    guard: SilenceGuard | None = None

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if self.reply_seconds is None or len(args) > 1 or kwargs.get("timeout") is not None:
            return super().wait(gen, *args, **kwargs)
        kwargs["timeout"] = self.reply_seconds
        try:
            return super().wait(gen, *args, **kwargs)
        except pg_errors._WaitTimeout:  # psycopg's own signal for an expired wait
            self.pgconn.finish()  # its state is unknown: never reuse it
            if self.guard is not None:
                self.guard.trip()
            raise DatabaseSilent(
                f"the database sent no reply within {self.reply_seconds:g} s"
            ) from None


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` become the psycopg 3 driver URL; others pass through."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme in _PLAIN_SCHEMES:
        return f"{DRIVER_SCHEME}://{rest}"
    return url


def make_engine(
    url: str,
    timeouts: DatabaseTimeouts | None = None,
    guard: SilenceGuard | None = None,
    **kw: Any,
) -> Engine:
    """An engine on the psycopg 3 driver that checks idle connections before handing them out.

    `timeouts` bound every wait on the server (None: psycopg's and Postgres' defaults, as
    migrations want); engines given one `guard` stop connecting together after a silence.
    Keyword arguments go to `sqlalchemy.create_engine` and override the defaults
    (e.g. `poolclass=NullPool` in a forking process, or a bigger `pool_size`).
    """
    # hide_parameters: an error must not log a player id, a word or strokes.
    options: dict[str, Any] = {"hide_parameters": True}
    if "poolclass" not in kw:
        options.update(DEFAULT_POOL)
        if timeouts is not None:
            options["pool_timeout"] = timeouts.checkout_seconds
    if timeouts is not None:
        options["connect_args"] = _merged_connect_args(timeouts, kw.pop("connect_args", {}))
    options.update(kw)
    engine = create_engine(normalize_url(url), **options)
    if timeouts is not None:
        _connect_with_deadlines(engine, timeouts, guard or SilenceGuard(timeouts.cooldown_seconds))
    _ping_when_idle(engine)
    return engine


def _merged_connect_args(timeouts: DatabaseTimeouts, given: dict[str, Any]) -> dict[str, Any]:
    """The timeouts' connection arguments plus the caller's; both may set server options."""
    merged = {**timeouts.connect_args(), **given}
    if "options" in given:
        merged["options"] = f"{timeouts.connect_args()['options']} {given['options']}"
    return merged


def _connect_with_deadlines(
    engine: Engine, timeouts: DatabaseTimeouts, guard: SilenceGuard
) -> None:
    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        guard.check()
        try:
            conn = ReplyDeadlineConnection.connect(*cargs, **cparams)
        except pg_errors.ConnectionTimeout:
            guard.trip()
            raise
        conn.reply_seconds = timeouts.reply_seconds
        conn.guard = guard
        return conn

    @event.listens_for(engine, "checkout")
    def _refuse_while_silent(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        guard.check()  # the pool closes this connection: a silent server's are suspect


def _ping_when_idle(engine: Engine) -> None:
    """A connection that sat in the pool over IDLE_PING_SECONDS (Postgres may have restarted
    meanwhile) is pinged on checkout and replaced if dead. One that dies while in use fails
    its statement (503), and SQLAlchemy then discards every connection older than it."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = monotonic()

    @event.listens_for(engine, "checkout")
    def _checking_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except DatabaseSilent:
            raise  # a new connection would wait as long: the caller answers 503 now
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool replaces the connection with a fresh one.
            raise exc.DisconnectionError(str(error)) from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (ids, fields) without a new query."""
    return sessionmaker(bind=engine, expire_on_commit=False)
