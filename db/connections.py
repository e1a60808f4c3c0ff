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
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def storage(self) -> ObjectStorage:
        return open_storage(self.settings.object_store_url)

    def close(self) -> None:
        """Release pooled connections opened so far."""
        if "engine" in self.__dict__:
            self.engine.dispose()
