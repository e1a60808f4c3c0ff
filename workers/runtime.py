"""Per-process resources of a worker: database, storage, Redis and the model cache.

Created lazily in each (forked) worker process, never at import time and never
shared across a fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import redis

from core.settings import Settings
from db.connections import Connections
from workers.model_cache import ModelCache

log = logging.getLogger(__name__)

# Object writes of a batch run side by side: their latency, not their CPU, adds up.
IO_THREADS = 8


class WorkerRuntime(Connections):
    _storage_paused_until: float = 0.0

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2)

    @cached_property
    def models(self) -> ModelCache:
        return ModelCache(
            self.sessions, self.storage, check_seconds=self.settings.model_check_seconds
        )

    @cached_property
    def io_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(IO_THREADS, thread_name_prefix="objects")

    @cached_property
    def _pause_lock(self) -> threading.Lock:
        return threading.Lock()

    def storage_paused(self) -> bool:
        return time.monotonic() < self._storage_paused_until

    def pause_storage(self, reason: BaseException) -> None:
        """After a failure, leave object writes to the sweeper for a while."""
        with self._pause_lock:
            if not self.storage_paused():
                log.warning(
                    "object storage failed (%s); writes wait %.0fs",
                    reason,
                    self.settings.storage_retry_seconds,
                )
            self._storage_paused_until = time.monotonic() + self.settings.storage_retry_seconds

    def close(self) -> None:
        super().close()
        if "redis" in self.__dict__:
            self.redis.close()
        if "io_pool" in self.__dict__:
            self.io_pool.shutdown(wait=True)


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
