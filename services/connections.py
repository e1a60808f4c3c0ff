"""The database and object storage a process talks to, opened lazily from Settings.

Lazily so that a forked process (gunicorn, Celery's pool) opens its own connections
instead of sharing its parent's sockets. The API, the workers and the flows extend it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from core.storage import ObjectStorage, open_storage
from db.session import DatabaseTimeouts, SilenceGuard, make_engine, make_session_factory

Role = Literal["api", "worker", "flow"]


def database_timeouts(settings: Settings, role: Role) -> DatabaseTimeouts:
    """The settings' bounds on Postgres for one kind of process."""
    common = {
        "connect_seconds": settings.db_connect_timeout_seconds,
        "reply_margin_seconds": settings.db_reply_margin_seconds,
    }
    if role == "api":
        return DatabaseTimeouts(
            statement_seconds=settings.api_db_statement_timeout_seconds,
            lock_seconds=settings.api_db_lock_timeout_seconds,
            checkout_seconds=settings.api_db_pool_timeout_seconds,
            cooldown_seconds=settings.api_db_cooldown_seconds,
            **common,
        )
    if role == "worker":
        return DatabaseTimeouts(
            statement_seconds=settings.worker_db_statement_timeout_seconds,
            lock_seconds=settings.worker_db_lock_timeout_seconds,
            **common,
        )
    return DatabaseTimeouts(
        statement_seconds=settings.flow_db_statement_timeout_seconds,
        lock_seconds=settings.flow_db_lock_timeout_seconds,
        **common,
    )


@dataclass
class Connections:
    settings: Settings
    # Whose timeouts its connections keep; the API and the workers say so, the rest (flows,
    # the command line) run long statements.
    role: ClassVar[Role] = "flow"

    @cached_property
    def db_timeouts(self) -> DatabaseTimeouts:
        return database_timeouts(self.settings, self.role)

    @cached_property
    def db_guard(self) -> SilenceGuard:
        """Shared by this process's engines: one silence stops them all connecting."""
        return SilenceGuard(self.db_timeouts.cooldown_seconds)

    def make_engine(self, **kw: Any) -> Engine:
        """An engine on the database with this role's timeouts (kw as `db.session.make_engine`)."""
        return make_engine(self.settings.db_url, self.db_timeouts, self.db_guard, **kw)

    @cached_property
    def engine(self) -> Engine:
        return self.make_engine()

    @cached_property
    def autocommit(self) -> Engine:
        """Connections on which each statement is its own transaction: the hot path's
        one-statement writes (a doodle's INSERT, a batch's claim or finish) take one round
        trip instead of three (BEGIN, the statement, COMMIT). A pool of its own, so its
        connections never switch mode."""
        return self.make_engine(isolation_level="AUTOCOMMIT", pool_size=8, max_overflow=8)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def storage(self) -> ObjectStorage:
        return open_storage(self.settings.object_store_url)

    def close(self) -> None:
        """Release pooled connections opened so far."""
        for name in ("engine", "autocommit"):
            if name in self.__dict__:
                self.__dict__[name].dispose()
