"""The clients an app talks to, made from Settings by `create_app` and kept on the app."""

from __future__ import annotations

from functools import cached_property

import redis
from flask import current_app

from api.rate_limits import Limiter
from services.connections import Connections

EXTENSION = "doodle"


class Resources(Connections):
    """Created lazily, so a forked gunicorn worker opens its own connections."""

    @cached_property
    def redis(self) -> redis.Redis:
        # Blocking waits (Prefer: wait) each hold a connection; size the pool for threads.
        return redis.Redis.from_url(
            self.settings.broker_url, socket_connect_timeout=2, health_check_interval=30
        )

    @cached_property
    def limiter(self) -> Limiter:
        return Limiter(self.redis, self.settings.rate_auth_failures)

    def close(self) -> None:
        """Release pooled connections (tests; a gunicorn worker just exits)."""
        super().close()
        if "redis" in self.__dict__:
            self.redis.close()


def resources() -> Resources:
    return current_app.extensions[EXTENSION]
