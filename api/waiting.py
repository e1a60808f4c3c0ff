"""`Prefer: wait=N` (RFC 7240): hold the response until a worker hands over the result.

Workers push each result, as JSON, to a Redis list named after the recognition (or the
guess); the waiting request pops it. A list, not pub/sub, so a worker that finishes
before the request starts listening is not missed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import redis

# A blocking pop's reply comes at most this long after its own timeout (a busy server).
_REPLY_MARGIN_SECONDS = 1.0
_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)


def requested_wait(prefer: str | None, cap: float) -> float:
    """Seconds the client is willing to wait; 0 when it did not ask (or asked nonsense)."""
    if not prefer:
        return 0.0
    match = _WAIT.search(prefer)
    if not match:
        return 0.0
    return min(float(match.group(1)), cap)


def publish_and_wait(
    client: redis.Redis, queue: str, message: bytes, channel: str, seconds: float
) -> dict[str, Any] | None:
    """Publish `message` on `queue` and return the result a worker pushes to `channel` within
    `seconds` (None when it does not, or when `seconds` is 0).

    One round trip: the LPUSH and the BLPOP go in one pipeline, and Redis runs the BLPOP,
    which blocks until the result arrives, right after the LPUSH.
    """
    if seconds <= 0:
        client.lpush(queue, message)
        return None
    # The wait ends by the BLPOP's timeout, never the socket's: that one is an error.
    socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if socket_timeout:
        seconds = max(0.1, min(seconds, socket_timeout - _REPLY_MARGIN_SECONDS))
    pipe = client.pipeline(transaction=False)
    pipe.lpush(queue, message)
    pipe.blpop([channel], timeout=seconds)
    _, popped = pipe.execute()
    return popped_result(popped)


def popped_result(popped: Any) -> dict[str, Any] | None:
    """The result a BLPOP of a waiter's list took (None if it timed out)."""
    if popped is None:
        return None
    result = json.loads(popped[1])
    return result if isinstance(result, dict) else None
