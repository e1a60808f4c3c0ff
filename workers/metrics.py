"""A worker's metrics: batch sizes and timings (observed once a batch, not a doodle), and a
heartbeat that tells the API this process is alive and which model version it serves.

The histograms go to prometheus_client's multiprocess files (see core.metrics); the API's
`/metrics` merges them. The heartbeat is a Redis key per process that expires after three
missed beats, so a killed worker stops counting on its own. A batch consumer beats too, from
its own loop (`ConsumerBeat`): `/readyz` wants one alive on each batch queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time

import redis
from prometheus_client import Histogram
from redis.exceptions import RedisError

from core.metrics import CONSUMER_PREFIX, HEARTBEAT_MISSES, HEARTBEAT_PREFIX, heartbeat_ttl_ms
from core.settings import Settings
from workers.consumer import BLOCK_SECONDS

log = logging.getLogger(__name__)

BATCH_SIZE = Histogram(
    "doodle_batch_size",
    "Doodles in one micro-batch a worker recognised.",
    ["task"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
RASTERISE_SECONDS = Histogram(
    "doodle_rasterise_seconds",
    "Time to rasterise one micro-batch.",
    ["task"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
INFERENCE_SECONDS = Histogram(
    "doodle_inference_seconds",
    "Time of one micro-batch's forward pass.",
    ["task"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

# The model version this process last answered with; the heartbeat reports it.
_in_service: dict[str, int | None] = {"model_version": None}


def observe_batch(
    task: str, size: int, rasterise_s: float, inference_s: float, model_version: int
) -> None:
    BATCH_SIZE.labels(task).observe(size)
    RASTERISE_SECONDS.labels(task).observe(rasterise_s)
    INFERENCE_SECONDS.labels(task).observe(inference_s)
    _in_service["model_version"] = model_version


class Heartbeat:
    """Refreshes `doodle:worker:<host>:<pid>` every `worker_heartbeat_seconds` from a
    daemon thread; the key expires after three missed beats."""

    def __init__(self, settings: Settings) -> None:
        self.key = f"{HEARTBEAT_PREFIX}{socket.gethostname()}:{os.getpid()}"
        self._interval = settings.worker_heartbeat_seconds
        self._ttl_ms = heartbeat_ttl_ms(settings)
        # A client of its own: the thread never shares a connection with a batch.
        self._redis = redis.Redis.from_url(
            settings.broker_url, socket_connect_timeout=2, socket_timeout=2
        )
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def beat(self) -> None:
        document = json.dumps({"model_version": _in_service["model_version"]})
        self._redis.set(self.key, document, px=self._ttl_ms)

    def _run(self) -> None:
        while True:
            try:
                self.beat()
                self._failing = False
            except RedisError as exc:
                if not self._failing:  # once an outage, not every beat
                    log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
                self._failing = True
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        """Stop beating and say so at once (a graceful stop need not wait for the TTL)."""
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(RedisError):
            self._redis.delete(self.key)
        self._redis.close()


def started_heartbeat(settings: Settings) -> Heartbeat:
    heartbeat = Heartbeat(settings)
    heartbeat.start()
    return heartbeat


def consumer_ttl_ms(settings: Settings) -> int:
    """Three beats, and never less than three turns of an idle consumer's loop (each
    waits up to BLOCK_SECONDS for a message): a short beat must not make it flap."""
    return max(heartbeat_ttl_ms(settings), int(BLOCK_SECONDS * HEARTBEAT_MISSES * 1000))


class ConsumerBeat:
    """Says that this process takes `queue` off the broker: `doodle:consumer:<queue>:<host>:<pid>`,
    refreshed at most every `worker_heartbeat_seconds` by the consumer's loop itself (not a
    thread of its own), so a consumer that died or stopped turning stops counting once the key
    expires (consumer_ttl_ms)."""

    def __init__(self, client: redis.Redis, queue: str, settings: Settings) -> None:
        self.key = f"{CONSUMER_PREFIX}{queue}:{socket.gethostname()}:{os.getpid()}"
        self._client = client
        self._interval = settings.worker_heartbeat_seconds
        self._ttl_ms = consumer_ttl_ms(settings)
        self._next = 0.0

    def beat(self) -> None:
        """Refresh the key if a beat is due; one cheap clock read otherwise."""
        now = time.monotonic()
        if now < self._next:
            return
        # Due again in an interval even if this one fails: an outage costs one try a beat.
        self._next = now + self._interval
        with contextlib.suppress(RedisError):  # the pop that follows meets it and reports it
            self._client.set(self.key, "1", px=self._ttl_ms)

    def stop(self) -> None:
        """A consumer that stops says so at once (no wait for the key to expire)."""
        with contextlib.suppress(RedisError):
            self._client.delete(self.key)
