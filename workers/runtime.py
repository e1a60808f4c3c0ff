"""Per-process resources of a worker: database, storage, Redis and the model cache.

Created lazily in each (forked) worker process, never at import time and never
shared across a fork.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

import redis
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine

from core.tasks import RESULT_TTL_SECONDS
from services.connections import Connections, Role
from workers.leases import LeaseKeeper
from workers.model_cache import ModelCache
from workers.objects import ObjectWriter, StoragePause

log = logging.getLogger(__name__)


class WorkerRuntime(Connections):
    role: ClassVar[Role] = "worker"

    @cached_property
    def autocommit(self) -> Engine:
        """As `Connections.autocommit`, without waiting for the WAL flush at each commit:
        a claim, a result or an object record that a database crash loses is redone by
        the sweeper (the doodle is still queued or running, its strokes still in its row).
        The API's INSERT, the promise behind a 202, stays synchronous."""
        return self.make_engine(
            isolation_level="AUTOCOMMIT",
            connect_args={"options": "-c synchronous_commit=off"},
            pool_size=4,
            max_overflow=4,
        )

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2)

    @cached_property
    def models(self) -> ModelCache:
        return ModelCache(
            self.sessions,
            self.storage,
            check_seconds=self.settings.model_check_seconds,
            cache_dir=self.settings.home / "model-cache",
        )

    @cached_property
    def leases(self) -> LeaseKeeper:
        """Renews the claims of the batches in hand; a batch working longer than the task
        time limit is presumed stuck and left to lapse."""
        return LeaseKeeper(
            self.autocommit, self.settings.lease_seconds, self.settings.task_soft_time_limit
        )

    @cached_property
    def storage_pause(self) -> StoragePause:
        return StoragePause(self.settings.storage_retry_seconds)

    @cached_property
    def objects(self) -> ObjectWriter:
        return ObjectWriter(self.storage, self.autocommit, self.storage_pause)

    def hand_over(
        self, results: Mapping[str, dict[str, Any]], also: tuple[str, object, int] | None = None
    ) -> bool:
        """Push each result, as JSON, to the Redis list its waiting request pops (see
        api.waiting), and set `also` = (key, value, ttl) too, in one round trip; False if
        Redis failed (the requests then time out: 202 to poll, or 503 for a guess)."""
        pipe = self.redis.pipeline(transaction=False)
        for channel, result in results.items():
            pipe.rpush(channel, json.dumps(result))
            pipe.expire(channel, RESULT_TTL_SECONDS)
        if also is not None:
            key, value, ttl = also
            pipe.set(key, value, ex=ttl)  # type: ignore[arg-type]
        try:
            pipe.execute()
        except RedisError as exc:
            log.warning("could not hand over %d results: %s", len(results), exc)
            return False
        return True

    def close(self) -> None:
        if "leases" in self.__dict__:
            self.leases.stop()
        if "objects" in self.__dict__:
            self.objects.flush(timeout=10)
        super().close()
        if "redis" in self.__dict__:
            self.redis.close()
