"""Slow clients and the probes that watch the API while they are held (scripts/slow_clients.py
and tests/e2e/test_slow_clients.py).

- SlowClients: holds `count` connections that never finish their request, from other source
  addresses of this machine (127.0.0.2, ...: the probes and the recognitions come from
  127.0.0.1, another client as far as the server can tell). Half drip their head one byte
  every `drip_seconds`, half send a head whose Content-Length is larger than the body they
  drip. A connection the server closes is opened again after `reopen_seconds`, so that
  `count` stay held; what the server answered before closing is tallied (408, 429, ...).
- HealthProbe: GET /healthz every second on a fresh connection with a 1 s timeout, as a
  load balancer's health check does.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import selectors
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchkit.stats import percentiles

LOOP_SECONDS = 0.05
CONNECT_TIMEOUT = 2.0


@dataclass
class _Slow:
    sock: socket.socket
    kind: str  # "head" or "body"
    drip: bytes
    opened_at: float
    next_drip: float
    sent: int = 0


def _head_drip() -> bytes:
    # A head that never ends: one more header byte at a time.
    return b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 100_000


def _body_drip() -> bytes:
    # A whole head announcing 1,000 bytes, then a body that trickles and stops short.
    head = b"POST /v1/recognitions HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: 1000\r\n\r\n" + b'{"drawing": ' + b" " * 900


@dataclass
class SlowTally:
    opened: int = 0
    connect_errors: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # first status line word, or "closed"
    held_s: list[float] = field(default_factory=list)  # how long the server kept each one

    def as_dict(self) -> dict[str, Any]:
        held = percentiles(self.held_s, (50, 99)) if self.held_s else {}
        return {
            "opened": self.opened,
            "connect_errors": self.connect_errors,
            "closed_by_server": dict(self.answers),
            "held_s_p50": held.get("p50"),
            "held_s_p99": held.get("p99"),
            "held_s_max": max(self.held_s) if self.held_s else None,
        }


class SlowClients:
    """`with SlowClients(...) as slow:` holds the connections until the block ends."""

    def __init__(
        self,
        host: str,
        port: int,
        count: int,
        sources: list[str],
        *,
        drip_seconds: float = 2.0,
        reopen_seconds: float = 1.0,
        kinds: tuple[str, ...] = ("head", "body"),
    ) -> None:
        self.host, self.port, self.count = host, port, count
        self.sources = sources
        self.drip_seconds, self.reopen_seconds = drip_seconds, reopen_seconds
        self.kinds = kinds
        self.tally = SlowTally()
        self.held: list[_Slow] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._selector = selectors.DefaultSelector()
        self._serial = itertools.count()

    def __enter__(self) -> SlowClients:
        for _ in range(self.count):
            self._open()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for slow in self.held:
            with contextlib.suppress(OSError):
                slow.sock.close()
        self.held.clear()
        self._selector.close()

    def _open(self) -> None:
        n = next(self._serial)
        kind = self.kinds[n % len(self.kinds)]
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((self.sources[n % len(self.sources)], 0))
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect((self.host, self.port))
            sock.setblocking(False)
        except OSError:
            self.tally.connect_errors += 1
            with contextlib.suppress(OSError, UnboundLocalError):
                sock.close()
            return
        now = time.monotonic()
        drip = _head_drip() if kind == "head" else _body_drip()
        slow = _Slow(sock, kind, drip, opened_at=now, next_drip=now)
        if kind == "body":  # the head at once; the body then trickles
            head_len = drip.index(b"\r\n\r\n") + 4 + 12
            slow.sent = sock.send(drip[:head_len])
        self.held.append(slow)
        self._selector.register(sock, selectors.EVENT_READ, slow)
        self.tally.opened += 1

    def _closed(self, slow: _Slow, answer: bytes) -> None:
        word = answer.split(b" ", 2)[1].decode(errors="replace") if answer.count(b" ") else ""
        self.tally.answers[word or "closed"] += 1
        self.tally.held_s.append(time.monotonic() - slow.opened_at)
        self._selector.unregister(slow.sock)
        slow.sock.close()
        self.held.remove(slow)

    def _run(self) -> None:
        reopen_at: list[float] = []
        while not self._stop.is_set():
            for key, _ in self._selector.select(LOOP_SECONDS):
                slow: _Slow = key.data
                try:
                    answer = slow.sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    answer = b""
                self._closed(slow, answer)
                reopen_at.append(time.monotonic() + self.reopen_seconds)
            now = time.monotonic()
            for slow in [s for s in self.held if s.next_drip <= now]:
                slow.next_drip = now + self.drip_seconds
                # Closed by the server: the selector reports it.
                with contextlib.suppress(OSError):
                    slow.sent += slow.sock.send(slow.drip[slow.sent : slow.sent + 1])
            due = [t for t in reopen_at if t <= now]
            reopen_at = [t for t in reopen_at if t > now]
            for _ in due:
                if not self._stop.is_set():
                    self._open()


@dataclass
class Probe:
    at_s: float
    latency_ms: float
    ok: bool
    error: str | None = None


class HealthProbe:
    """GET /healthz every `interval` seconds (fresh connection, `timeout` seconds) until the
    `with` block ends."""

    def __init__(self, host: str, port: int, interval: float = 1.0, timeout: float = 1.0) -> None:
        self.host, self.port, self.interval, self.timeout = host, port, interval, timeout
        self.probes: list[Probe] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz-probe", daemon=True)

    def __enter__(self) -> HealthProbe:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval
            t0 = time.monotonic()
            error = None
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    error = f"http_{response.status}"
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
            finally:
                conn.close()
            latency = (time.monotonic() - t0) * 1000.0
            self.probes.append(Probe(t0 - self._start, latency, error is None, error))

    @property
    def failures(self) -> list[Probe]:
        return [p for p in self.probes if not p.ok]

    def summary(self) -> dict[str, Any]:
        latencies = [p.latency_ms for p in self.probes]
        pcts = percentiles(latencies, (50, 99)) if latencies else {}
        return {
            "probes": len(self.probes),
            "failed": len(self.failures),
            "errors": dict(Counter(p.error for p in self.failures)),
            "p50_ms": pcts.get("p50"),
            "p99_ms": pcts.get("p99"),
            "max_ms": max(latencies) if latencies else None,
        }
