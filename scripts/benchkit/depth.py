"""The product's backlog over time: the Celery queue in Redis and the unfinished rows.

A `DepthSampler` thread records, every `interval` seconds, the length of the Redis list the
worker consumes (`recognitions`, the Celery queue; messages a worker has fetched but not yet
acknowledged move to the `unacked` hash) and `count(*)` of the recognitions still queued or
running in Postgres. The pure helpers below turn the samples into peaks, a drain time and a
compact timeline; `outcomes` reads what became of the accepted recognitions.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

QUEUE = "recognitions"  # core.tasks.QUEUE: the Redis list Celery's transport uses
UNACKED = "unacked"  # kombu's Redis transport: delivered, not yet acknowledged
UNFINISHED_SQL = "SELECT count(*) FROM recognitions WHERE status IN ('queued', 'running')"


@dataclass(frozen=True)
class DepthSample:
    """One observation; -1 for a value that could not be read."""

    t: float  # seconds from the burst's start (the sampler's origin)
    queued: int  # LLEN of the Celery queue
    unacked: int  # HLEN of the unacked hash
    unfinished: int  # rows queued or running

    @property
    def valid(self) -> bool:
        return self.queued >= 0 and self.unfinished >= 0

    @property
    def busy(self) -> bool:
        return self.queued > 0 or self.unfinished > 0


# --------------------------------------------------------------------------- pure helpers


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://...) as libpq takes it (postgresql://...)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


def peaks(samples: Iterable[DepthSample]) -> dict[str, int]:
    """The largest queue, unacked and unfinished counts seen (-1 if none could be read)."""
    out = {"queued": -1, "unacked": -1, "unfinished": -1}
    for s in samples:
        for key in out:
            out[key] = max(out[key], getattr(s, key))
    return out


def drain_time(
    samples: Sequence[DepthSample], start_t: float, end_t: float
) -> dict[str, float | None]:
    """When the backlog was gone: the first sample with nothing queued or unfinished after the
    last one that had some. Seconds from `start_t` (the burst's start) and from `end_t` (its
    end; 0 if it drained before). None if the last readable sample still had a backlog.

    A backlog never seen counts as drained at the start.
    """
    valid = [s for s in samples if s.valid]
    busy = [i for i, s in enumerate(valid) if s.busy]
    if not busy:
        drained_at: float | None = start_t
    elif busy[-1] + 1 < len(valid):
        drained_at = valid[busy[-1] + 1].t
    else:
        drained_at = None
    if drained_at is None:
        return {"drained_at_s": None, "from_start_s": None, "from_end_s": None}
    return {
        "drained_at_s": drained_at,
        "from_start_s": drained_at - start_t,
        "from_end_s": max(0.0, drained_at - end_t),
    }


def depth_timeline(samples: Sequence[DepthSample], step: float = 0.5) -> list[dict[str, Any]]:
    """The samples in buckets of `step` seconds ([k*step, (k+1)*step)), the largest value of
    each count in each bucket; buckets without samples are left out."""
    if step <= 0:
        raise ValueError("step must be positive")
    buckets: dict[int, dict[str, Any]] = {}
    for s in samples:
        k = math.floor(s.t / step + 1e-9)
        b = buckets.setdefault(k, {"t": k * step, "queued": -1, "unacked": -1, "unfinished": -1})
        b["queued"] = max(b["queued"], s.queued)
        b["unacked"] = max(b["unacked"], s.unacked)
        b["unfinished"] = max(b["unfinished"], s.unfinished)
    return [buckets[k] for k in sorted(buckets)]


def coarsen(
    timeline: Sequence[dict[str, Any]], step: float, max_buckets: int = 48
) -> tuple[float, list[dict[str, Any]]]:
    """A `depth_timeline` in at most about `max_buckets` buckets: step multiplied by a whole
    factor, the largest value of the merged buckets. Returns (the new step, the buckets)."""
    if not timeline:
        return step, []
    span = (timeline[-1]["t"] - timeline[0]["t"]) / step + 1
    factor = max(1, math.ceil(span / max_buckets - 1e-9))
    if factor == 1:
        return step, [dict(b) for b in timeline]
    wide = step * factor
    merged: dict[int, dict[str, Any]] = {}
    for b in timeline:
        k = math.floor(b["t"] / wide + 1e-9)
        m = merged.setdefault(k, {"t": k * wide, "queued": -1, "unacked": -1, "unfinished": -1})
        for key in ("queued", "unacked", "unfinished"):
            m[key] = max(m[key], b[key])
    return wide, [merged[k] for k in sorted(merged)]


def classify_outcomes(
    accepted: Sequence[str], rows: Iterable[tuple[str, str, str | None]]
) -> dict[str, Any]:
    """What became of the accepted recognitions, from (id, status, error) rows."""
    found = {rid: (status, error) for rid, status, error in rows}
    out: dict[str, Any] = {"accepted": len(accepted), "done": 0, "failed": [], "unfinished": []}
    missing = []
    for rid in accepted:
        if rid not in found:
            missing.append(rid)
            continue
        status, error = found[rid]
        if status == "done":
            out["done"] += 1
        elif status == "failed":
            out["failed"].append({"id": rid, "error": error})
        else:
            out["unfinished"].append({"id": rid, "status": status})
    out["missing"] = missing
    return out


# --------------------------------------------------------------------------- I/O


def outcomes(db_url: str, accepted: Sequence[str]) -> dict[str, Any]:
    """`classify_outcomes` of the accepted ids, read from the product's database."""
    import psycopg

    with psycopg.connect(libpq_url(db_url), connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id::text, status::text, error FROM recognitions WHERE id = ANY(%s::uuid[])",
            (list(accepted),),
        ).fetchall()
    return classify_outcomes(accepted, rows)


class DepthSampler:
    """Samples the backlog every `interval` seconds on a thread, from `start()` to `stop()`."""

    def __init__(self, db_url: str, redis_url: str, interval: float = 0.1) -> None:
        self.db_url = libpq_url(db_url)
        self.redis_url = redis_url
        self.interval = interval
        self.samples: list[DepthSample] = []
        self.origin = time.perf_counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="depth-sampler")
        self._redis: Any = None
        self._db: Any = None

    def start(self, origin: float | None = None) -> None:
        self.origin = time.perf_counter() if origin is None else origin
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            self._redis.close()
        with contextlib.suppress(Exception):
            self._db.close()

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def wait_drained(
        self, after_t: float, timeout: float, check: Callable[[], None] | None = None
    ) -> bool:
        """Block until a sample taken after `after_t` shows no backlog; False on timeout.
        `check` runs every second or so (say, raising if a server died)."""
        deadline = time.monotonic() + timeout
        next_check = 0.0
        while time.monotonic() < deadline:
            if check is not None and time.monotonic() >= next_check:
                check()
                next_check = time.monotonic() + 1.0
            last = self.samples[-1] if self.samples else None
            if last is not None and last.t >= after_t and last.valid and not last.busy:
                return True
            time.sleep(self.interval)
        return False

    def _note(self, error: BaseException) -> None:
        if len(self.errors) < 20:
            self.errors.append(f"{self.now():.1f}s {type(error).__name__}: {error}")

    def _read_redis(self) -> tuple[int, int]:
        import redis

        try:
            if self._redis is None:
                self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=2)
            pipe = self._redis.pipeline(transaction=False)
            pipe.llen(QUEUE)
            pipe.hlen(UNACKED)
            queued, unacked = pipe.execute()
            return int(queued), int(unacked)
        except redis.RedisError as exc:
            self._note(exc)
            with contextlib.suppress(Exception):
                self._redis.close()
            self._redis = None
            return -1, -1

    def _read_db(self) -> int:
        import psycopg

        try:
            if self._db is None:
                self._db = psycopg.connect(self.db_url, autocommit=True, connect_timeout=5)
            row = self._db.execute(UNFINISHED_SQL).fetchone()
            return int(row[0])
        except psycopg.Error as exc:
            self._note(exc)
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
            return -1

    def sample(self) -> DepthSample:
        """One observation now (not recorded); safe before `start()` or after `stop()`."""
        t = self.now()
        queued, unacked = self._read_redis()
        return DepthSample(t, queued, unacked, self._read_db())

    def _run(self) -> None:
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append(self.sample())
            next_tick += self.interval
            delay = next_tick - time.perf_counter()
            if delay < 0:  # a slow read: skip the missed ticks rather than bunch up
                next_tick = time.perf_counter()
                delay = 0
            self._stop.wait(delay)
