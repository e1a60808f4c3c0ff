"""The clients an app talks to, made from Settings by `create_app` and kept on the app."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.rate_limits import Limiter
from services.connections import Connections, Role

EXTENSION = "doodle"


class Resources(Connections):
    """Created lazily, so a forked gunicorn worker opens its own connections."""

    role: ClassVar[Role] = "api"  # short database timeouts: a frozen Postgres is a 503

    @cached_property
    def redis(self) -> redis.Redis:
        settings = self.settings
        return redis.Redis.from_url(
            settings.broker_url,
            socket_connect_timeout=settings.redis_connect_timeout_seconds,
            # A Prefer: wait's BLPOP holds its reply up to max_wait_seconds: the socket must
            # wait longer, or an expected timeout becomes an error (redis-py's default is 5 s).
            socket_timeout=settings.max_wait_seconds + settings.redis_reply_margin_seconds,
            # Never resend: a pipeline that publishes a doodle would publish it twice.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
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
