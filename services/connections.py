"""The database and object storage a process talks to, opened lazily from Settings.

Lazily so that a forked process (gunicorn, Celery's pool) opens its own connections
instead of sharing its parent's sockets. The API, the workers and the flows extend it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from core.storage import ObjectStorage, open_storage
from db.session import make_engine, make_session_factory


@dataclass
class Connections:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.db_url)

    @cached_property
    def autocommit(self) -> Engine:
        """Connections on which each statement is its own transaction: the hot path's
        one-statement writes (a doodle's INSERT, a batch's claim or finish) take one round
        trip instead of three (BEGIN, the statement, COMMIT). A pool of its own, so its
        connections never switch mode."""
        return make_engine(
            self.settings.db_url, isolation_level="AUTOCOMMIT", pool_size=8, max_overflow=8
        )

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
