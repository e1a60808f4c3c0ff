"""Micro-batches that grow with the load: celery-batches, flushed when the buffer stops
growing instead of on a fixed clock.

celery-batches flushes its buffer every `flush_interval` or at `flush_every` messages. The
worker reads one message per turn of its event loop, so under load a fixed clock flushes
batches of one or two messages while dozens wait in the broker, and every batch pays the
same round trips. Here the clock only looks: it flushes when no message arrived since the
previous tick (nothing more is coming now), when the oldest message has waited `max_wait`,
or at `flush_every` messages. Alone, a doodle waits one tick (1 ms); under load, batches fill.
"""

from __future__ import annotations

from time import monotonic

from celery_batches import Batches


class AdaptiveBatches(Batches):
    abstract = True
    #: Seconds between looks at the buffer (the Batches clock).
    flush_interval = 0.001
    #: Longest a message waits for its batch to fill, in seconds.
    max_wait = 0.004

    def __init__(self) -> None:
        super().__init__()
        self._seen = 0  # buffer size at the previous tick
        self._since: float | None = None  # when the buffer was first seen non-empty

    def _do_flush(self) -> None:
        size = self._buffer.qsize()
        now = monotonic()
        if 0 < size < self.flush_every:
            if self._since is None:
                self._since = now
            growing = size > self._seen
            if growing and now - self._since < self.max_wait:
                self._seen = size
                return  # more are arriving: let the batch fill
        self._seen, self._since = 0, None
        super()._do_flush()
