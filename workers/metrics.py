"""A worker's metrics: batch sizes and timings (observed once a batch, not a doodle), and a
heartbeat that tells the API this process is alive and which model version it serves.

The histograms go to prometheus_client's multiprocess files (see core.metrics); the API's
`/metrics` merges them. The heartbeat is a Redis key per process that expires after three
missed beats, so a killed worker stops counting on its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading

import redis
from prometheus_client import Histogram
from redis.exceptions import RedisError

from core.metrics import HEARTBEAT_PREFIX, heartbeat_ttl_ms
from core.settings import Settings

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
