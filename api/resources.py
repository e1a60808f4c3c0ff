"""The clients an app talks to, made from Settings by `create_app` and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from celery import Celery
from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from core.storage import ObjectStorage, open_storage
from db.session import make_engine, make_session_factory
from workers.celery_app import make_celery

EXTENSION = "doodle"


@dataclass
class Resources:
    """Created lazily, so a forked gunicorn worker opens its own connections."""

    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.db_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def redis(self) -> redis.Redis:
        # Blocking waits (Prefer: wait) each hold a connection; size the pool for threads.
        return redis.Redis.from_url(
            self.settings.broker_url, socket_connect_timeout=2, health_check_interval=30
        )

    @cached_property
    def celery(self) -> Celery:
        return make_celery(self.settings)

    @cached_property
    def storage(self) -> ObjectStorage:
        return open_storage(self.settings.object_store_url)

    def close(self) -> None:
        """Release pooled connections (tests; a gunicorn worker just exits)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
        if "celery" in self.__dict__:
            self.celery.close()


def resources() -> Resources:
    return current_app.extensions[EXTENSION]
