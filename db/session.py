"""Engines and session factories. Nothing is created at import time.

Callers own their transactions::

    engine = make_engine(settings.db_url)
    factory = make_session_factory(engine)
    with factory.begin() as s:
        registry.move_alias(s, Alias.PRODUCTION, 3, actor="flow:promote")

Helpers in `db` take a `Session` and never commit; the `with` block above does.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

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


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` become the psycopg 3 driver URL; others pass through."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme in _PLAIN_SCHEMES:
        return f"{DRIVER_SCHEME}://{rest}"
    return url


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine on the psycopg 3 driver that checks idle connections before handing them out.

    Keyword arguments go to `sqlalchemy.create_engine` and override the defaults
    (e.g. `poolclass=NullPool` in a forking process, or a bigger `pool_size`).
    """
    # hide_parameters: an error must not log a player id, a word or strokes.
    options: dict[str, Any] = {"hide_parameters": True}
    if "poolclass" not in kw:
        options.update(DEFAULT_POOL)
    options.update(kw)
    engine = create_engine(normalize_url(url), **options)
    _ping_when_idle(engine)
    return engine


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
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool replaces the connection with a fresh one.
            raise exc.DisconnectionError(str(error)) from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (ids, fields) without a new query."""
    return sessionmaker(bind=engine, expire_on_commit=False)
