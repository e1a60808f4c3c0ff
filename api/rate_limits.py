"""Rate limits, counted in Redis so every API process shares them.

Fixed windows: a key's recognitions (or guesses) in the current window, and the failed
authentications from a client address, which once over their limit refuse that address
every attempt, right or wrong, until the window ends (so guessing keys stays slow). One
pipelined round trip a request. If Redis is down the limits are not enforced: refusing
work the database can still record durably would be worse than a window without limits.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import redis
from redis.exceptions import RedisError

from api.errors import TooManyRequests
from core.rates import Rate

log = logging.getLogger(__name__)

_PREFIX = "doodle:rate"
_WARN_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Verdict:
    failures_over: int | None  # seconds until this address may try again, if blocked
    rate_over: int | None  # seconds until this key may send again, if over its rate


def _window(rate: Rate, now: float) -> tuple[int, int]:
    """(window number, whole seconds until it ends: the Retry-After)."""
    number = int(now // rate.seconds)
    return number, max(1, math.ceil((number + 1) * rate.seconds - now))


class Limiter:
    def __init__(self, client: redis.Redis, failures: Rate | None) -> None:
        self._redis = client
        self._failures = failures
        self._warned_at = 0.0

    def count(
        self, address: str, authenticated: bool, bucket: str, who: str, rate: Rate | None
    ) -> Verdict:
        """Count this attempt: a failure of `address` if not `authenticated`, else one
        request of `who` in `bucket`; say whether either is over its limit."""
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        failures_key = None
        if self._failures is not None:
            number, failures_wait = _window(self._failures, now)
            failures_key = f"{_PREFIX}:auth-failures:{address}:{number}"
            if authenticated:
                pipe.get(failures_key)
            else:
                pipe.incr(failures_key)
                pipe.expire(failures_key, self._failures.seconds + 1)
        rate_key = None
        if authenticated and rate is not None:
            number, rate_wait = _window(rate, now)
            rate_key = f"{_PREFIX}:{bucket}:{who}:{number}"
            pipe.incr(rate_key)
            pipe.expire(rate_key, rate.seconds + 1)
        if failures_key is None and rate_key is None:
            return Verdict(None, None)
        try:
            answers = pipe.execute()
        except RedisError as exc:
            self._warn(exc)
            return Verdict(None, None)
        failures_over = rate_over = None
        if failures_key is not None and self._failures is not None:
            counted = int(answers.pop(0) or 0)
            if not authenticated:
                answers.pop(0)  # the expire
            earlier = counted if authenticated else counted - 1
            # After `count` failures every attempt, right or wrong, waits out the window.
            if earlier >= self._failures.count:
                failures_over = failures_wait
        if rate_key is not None and rate is not None and int(answers[0]) > rate.count:
            rate_over = rate_wait
        return Verdict(failures_over, rate_over)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("rate limits not enforced while Redis fails: %s", type(exc).__name__)


def too_many(what: str, retry_after: int, details: dict[str, object]) -> TooManyRequests:
    error = TooManyRequests(what, details)
    error.retry_after = retry_after
    return error
