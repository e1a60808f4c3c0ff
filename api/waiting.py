"""`Prefer: wait=N` (RFC 7240): hold the response until the worker is done, at most N s."""

from __future__ import annotations

import re
import uuid

import redis

from workers.signatures import done_channel

_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)


def requested_wait(prefer: str | None, cap: float) -> float:
    """Seconds the client is willing to wait; 0 when it did not ask (or asked nonsense)."""
    if not prefer:
        return 0.0
    match = _WAIT.search(prefer)
    if not match:
        return 0.0
    return min(float(match.group(1)), cap)


def wait_until_done(client: redis.Redis, recognition_id: uuid.UUID, seconds: float) -> bool:
    """Block on the list the worker pushes to when done; True if it said so in time.

    A list (not pub/sub) so a worker that finishes before we start listening is not missed.
    """
    if seconds <= 0:
        return False
    channel = done_channel(recognition_id)
    popped = client.blpop([channel], timeout=seconds)
    if popped is None:
        return False
    # Leave the mark for other waiters on the same recognition (it expires on its own).
    client.rpush(channel, b"1")
    return True
