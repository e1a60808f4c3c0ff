"""HTTP load generators: closed loop (N clients, each waits for its answer) and open loop
(requests sent on a fixed schedule, whatever the earlier ones became).

Both use one keep-alive `http.client` connection per thread. A request that fails because the
server had closed an idle keep-alive connection is resent once on a new connection (as HTTP
clients do); latency then counts from the first attempt.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchkit.summaries import Sample, Shot

# The server closed an idle keep-alive connection before reading the request.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError)

# (status, body) -> (info, error): what an open-loop caller keeps of an answer; an error
# (say "bad_body") marks an answer with the right status that is not usable.
Judge = Callable[[int, bytes], tuple[Any, str | None]]


@dataclass
class Target:
    name: str
    host: str
    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    def with_headers(self, path: str | None = None, **changes: str | None) -> Target:
        """A copy for another path and headers (a None value removes a header)."""
        headers = dict(self.headers)
        for name, value in changes.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return Target(self.name, self.host, self.port, path or self.path, headers)


class _Client:
    """One keep-alive connection to a target, reopened after failures."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.used = False  # whether `conn` has answered a request already

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    self.target.host, self.target.port, timeout=self.timeout
                )
                self.used = False
            reused = self.used
            try:
                self.conn.request("POST", self.target.path, body=body, headers=self.target.headers)
                response = self.conn.getresponse()
                payload = response.read()
                self.used = True
                return response.status, payload
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if not (attempt == 0 and reused and isinstance(exc, _STALE)):
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None


def judge_recognition(status: int, payload: bytes, word: str) -> Sample:
    """A Sample without latency (filled by the caller) from one `Prefer: wait` answer."""
    if status != 200:
        return Sample(0.0, False, error=f"http_{status}")
    try:
        body = json.loads(payload)
        if body.get("status") != "done":
            return Sample(0.0, False, error=f"status_{body.get('status')}")
        label = body["prediction"]["label"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return Sample(0.0, False, error="bad_body")
    timings = body.get("timings") if isinstance(body.get("timings"), dict) else None
    return Sample(0.0, True, correct=label == word, timings=timings)


def error_text(payload: bytes, limit: int = 160) -> str:
    """What an error answer says: `code: message` of the API's error shape, else its start."""
    try:
        error = json.loads(payload)["error"]
        text = f"{error.get('code')}: {error.get('message')}"
    except (ValueError, KeyError, TypeError, AttributeError):
        text = payload[:limit].decode("utf-8", "replace")
    return text[:limit]


def judge_accepted(status: int, payload: bytes) -> tuple[Any, str | None]:
    """An open-loop recognition (no Prefer: wait): the id of a 2xx answer (else what the
    error answer says)."""
    if not 200 <= status < 300:
        return error_text(payload), None
    try:
        return str(json.loads(payload)["id"]), None
    except (ValueError, KeyError, TypeError):
        return None, "bad_body"


def judge_guess(status: int, payload: bytes) -> tuple[Any, str | None]:
    """A `POST /v1/guesses` answer: 200 must carry a list of {label, confidence} (else what
    the error answer says)."""
    if status != 200:
        return error_text(payload), None
    try:
        guesses = json.loads(payload)["guesses"]
        if not isinstance(guesses, list) or not all(
            isinstance(g, dict) and isinstance(g.get("label"), str) for g in guesses
        ):
            return None, "bad_body"
        return (guesses[0]["label"] if guesses else None), None
    except (ValueError, KeyError, TypeError):
        return None, "bad_body"


def run_closed_loop(
    target: Target,
    bodies: Sequence[bytes],
    words: Sequence[str],
    *,
    concurrency: int,
    requests: int,
    duration: float | None = None,
    timeout: float = 30.0,
    offset: int = 0,
) -> tuple[list[Sample], float]:
    """`concurrency` threads post bodies[offset + i] until `requests` answers (or `duration`
    seconds). Returns the samples and the wall time from first send to last answer."""
    counter = itertools.count()
    samples: list[Sample] = []
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration if duration else None

    def client() -> None:
        http_client = _Client(target, timeout)
        local: list[Sample] = []
        try:
            while True:
                i = next(counter)
                if deadline is None and i >= requests:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                k = (offset + i) % len(bodies)
                t0 = time.perf_counter()
                try:
                    status, payload = http_client.post(bodies[k])
                    judged = judge_recognition(status, payload, words[k])
                except (OSError, http.client.HTTPException) as exc:
                    judged = Sample(0.0, False, error=type(exc).__name__)
                latency = (time.perf_counter() - t0) * 1000.0
                local.append(
                    Sample(latency, judged.ok, judged.correct, judged.error, judged.timings)
                )
        finally:
            http_client.close()
            with lock:
                samples.extend(local)

    _run_threads(client, concurrency)
    return samples, time.perf_counter() - start


def pacing_schedule(rate: float, duration: float) -> list[float]:
    """Send times (seconds from the start) of `rate` requests a second for `duration` seconds:
    every i / rate before `duration` (the first at 0)."""
    if rate <= 0 or duration <= 0 or not math.isfinite(rate * duration):
        raise ValueError(f"rate and duration must be positive, got {rate} and {duration}")
    return [i / rate for i in range(math.ceil(rate * duration - 1e-9))]


def sender_threads(rate: float, latency_s: float = 0.25, low: int = 8, high: int = 256) -> int:
    """Threads an open-loop sender needs to keep `rate` a second going while answers take up
    to `latency_s` (Little's law), within [low, high]."""
    return max(low, min(high, math.ceil(rate * latency_s)))


def run_open_loop(
    target: Target,
    bodies: Sequence[bytes],
    *,
    rate: float,
    duration: float,
    threads: int,
    judge: Judge | None = None,
    timeout: float = 30.0,
    offset: int = 0,
    start_at: float | None = None,
) -> tuple[list[Shot], float]:
    """Post bodies[offset + i] at the times of `pacing_schedule(rate, duration)`, counted from
    `start_at` (a `time.perf_counter()` value; default now).

    Each of `threads` senders takes the next scheduled request, sleeps until it is due and
    sends it; a sender busy with a slow answer does not hold the schedule up as long as another
    is free (`Shot.lag_ms` shows when none was). Returns the shots and the wall time from the
    start to the last answer.
    """
    schedule = pacing_schedule(rate, duration)
    counter = itertools.count()
    shots: list[Shot] = []
    lock = threading.Lock()
    start = time.perf_counter() if start_at is None else start_at

    def sender() -> None:
        http_client = _Client(target, timeout)
        local: list[Shot] = []
        try:
            while (i := next(counter)) < len(schedule):
                delay = start + schedule[i] - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                status, info, error = 0, None, None
                try:
                    status, payload = http_client.post(bodies[(offset + i) % len(bodies)])
                    if judge is not None:
                        info, error = judge(status, payload)
                except (OSError, http.client.HTTPException) as exc:
                    error = type(exc).__name__
                t1 = time.perf_counter()
                local.append(
                    Shot(i, schedule[i], t0 - start, (t1 - t0) * 1000.0, status, error, info)
                )
        finally:
            http_client.close()
            with lock:
                shots.extend(local)

    _run_threads(sender, threads)
    shots.sort(key=lambda s: s.index)
    return shots, time.perf_counter() - start


def _run_threads(fn: Callable[[], None], n: int) -> None:
    threads = [threading.Thread(target=fn, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
