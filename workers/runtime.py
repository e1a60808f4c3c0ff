"""Per-process resources of a worker: database, storage, Redis and the model cache.

Created lazily in each (forked) worker process, never at import time and never
shared across a fork.
"""

from __future__ import annotations

import os
from functools import cached_property

import redis

from core.settings import Settings
from db.connections import Connections
from workers.model_cache import ModelCache


class WorkerRuntime(Connections):
    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.broker_url)

    @cached_property
    def models(self) -> ModelCache:
        return ModelCache(
            self.sessions, self.storage, check_seconds=self.settings.model_check_seconds
        )

    def close(self) -> None:
        super().close()
        if "redis" in self.__dict__:
            self.redis.close()


class RuntimeHolder:
    """One runtime per process: a fork gets a fresh one instead of the parent's sockets."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._runtime: WorkerRuntime | None = None
        self._pid = -1

    def get(self) -> WorkerRuntime:
        if self._runtime is None or self._pid != os.getpid():
            self._runtime = WorkerRuntime(self._settings)
            self._pid = os.getpid()
        return self._runtime

    def reset(self) -> None:
        if self._runtime is not None and self._pid == os.getpid():
            self._runtime.close()
        self._runtime = None
