"""The lease heartbeat: a worker renews the claims of the batches it is working on.

A claim is a lease (`DOODLE_LEASE_SECONDS` from the claim): past it, the sweeper presumes
the worker dead and resends the doodles. A batch that takes longer than a lease (a costly
PNG, a busy machine) used to be resent while its worker lived, and recognised twice. One
thread a process now renews every claim it holds longer than a third of a lease, one
UPDATE a batch, until the batch finishes; a process that dies takes the thread with it, so
a dead worker's doodles are still resent a lease after its last renewal.

Renewal stops after `max_hold_seconds` too: a batch that works that long is presumed stuck,
and its doodles go the way of a dead worker's (resent, and failed after too many attempts).
Batches that finish within a third of a lease, nearly all, cost no statement at all.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from db import processing as rec

log = logging.getLogger(__name__)


@dataclass
class _Hold:
    """Doodles claimed together: their claim's time (the row's started_at, which marks them
    as this claim's), when it was last renewed and when the hold began (monotonic)."""

    ids: list[uuid.UUID]
    claimed_at: dt.datetime
    renewed: float
    began: float


class LeaseKeeper:
    """Renews the leases of the claims held in `holding` blocks, from a thread of its own
    (started on first use, so a process forked before that has none of its parent's)."""

    def __init__(self, engine: Engine, lease_seconds: float, max_hold_seconds: float) -> None:
        self._engine = engine
        # Renewed a third of a lease after the claim or the last renewal; the thread looks
        # twice as often, so a renewal is at most half a lease late.
        self.renew_after = lease_seconds / 3
        self._max_hold = max_hold_seconds
        self._holds: dict[int, _Hold] = {}
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, claimed: Sequence[rec.Claimed]) -> Iterator[None]:
        """Keep the claims of `claimed` renewed while the block runs."""
        now = time.monotonic()
        by_claim: dict[dt.datetime, list[uuid.UUID]] = {}
        for c in claimed:
            by_claim.setdefault(c.started_at, []).append(c.id)
        with self._lock:
            numbers = [next(self._numbers) for _ in by_claim]
            for number, (claimed_at, ids) in zip(numbers, by_claim.items(), strict=True):
                self._holds[number] = _Hold(ids, claimed_at, now, now)
            self._start()
        try:
            yield
        finally:
            with self._lock:
                for number in numbers:
                    self._holds.pop(number, None)

    def renew_due(self) -> int:
        """Renew the holds due for it, one statement each; the number of doodles renewed.
        A hold whose doodles were all finished or taken over is dropped."""
        now = time.monotonic()
        with self._lock:
            due = {
                n: h
                for n, h in self._holds.items()
                if now - h.renewed >= self.renew_after and now - h.began < self._max_hold
            }
        renewed = 0
        for number, hold in due.items():
            try:
                with self._engine.connect() as conn:
                    claimed_at, count = rec.extend_lease(conn, hold.ids, hold.claimed_at)
            except SQLAlchemyError as exc:
                # Tried again at the next look; the sweeper needs the database too.
                log.warning("could not renew %d leases: %s", len(hold.ids), type(exc).__name__)
                continue
            renewed += count
            with self._lock:
                if number not in self._holds:
                    continue  # finished meanwhile
                if claimed_at is None:
                    del self._holds[number]
                else:
                    hold.claimed_at, hold.renewed = claimed_at, time.monotonic()
        return renewed

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _start(self) -> None:
        if self._thread is None and not self._stopped.is_set():
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.renew_after / 2):
            try:
                self.renew_due()
            except Exception:
                log.exception("renewing leases failed")
