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

_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)


def requested_wait(prefer: str | None, cap: float) -> float:
    """Seconds the client is willing to wait; 0 when it did not ask (or asked nonsense)."""
    if not prefer:
        return 0.0
    match = _WAIT.search(prefer)
    if not match:
        return 0.0
    return min(float(match.group(1)), cap)


def wait_for_result(client: redis.Redis, channel: str, seconds: float) -> dict[str, Any] | None:
    """The result a worker pushed to `channel` within `seconds`, else None."""
    if seconds <= 0:
        return None
    popped: Any = client.blpop([channel], timeout=seconds)
    if popped is None:
        return None
    result = json.loads(popped[1])
    return result if isinstance(result, dict) else None
