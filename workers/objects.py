"""Writing kept doodles to object storage, off the recognition path.

Kept doodles go to object storage as segments (`core.segments`): one request to the
storage server for many doodles instead of one a doodle. A batch hands its kept doodles
to the process's `ObjectWriter` and moves on; one background thread gathers what batches
hand it for up to WRITE_EVERY_SECONDS and writes it as one segment, with four statements
for all of it (so a worker answering small batches, at low load, does not pay a write and
its statements a batch). Doodles sent as PNG keep their image as an object of its own.

A segment's key is recorded in the rows (committed) before the segment is written, so
a write that is retried, here or by the sweeper, overwrites the same object and never
leaves a stray copy. Nothing is lost if the process dies or storage is down: until
`stored_at` is set the strokes stay in the row, and the sweeper writes whatever is still
pending (`store_pending`).

An erasure (services.removal) may delete doodles whose objects are still to be written:
a run of writes holds its keys' advisory locks, the ones the erasure takes, and writes
only the doodles whose rows still exist, so a late write never brings one back.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from core import segments
from core.storage import ObjectStorage, StorageError
from db import erasures
from db import processing as rec
from db.models import InputFormat

log = logging.getLogger(__name__)

# Doodles waiting for the writer; beyond this the sweeper takes over (memory stays bounded).
MAX_WAITING = 2_000
# A segment gathers the doodles batches hand over for this long, or this many of them.
WRITE_EVERY_SECONDS = 0.1
SEGMENT_DOODLES = 256


@dataclass(frozen=True)
class ObjectWrite:
    """One object to write, and the doodles it holds."""

    key: str
    data: bytes
    content_type: str
    ids: tuple[uuid.UUID, ...]


def writes_for(kept: Sequence[rec.KeptDoodle]) -> list[ObjectWrite]:
    """The objects kept doodles go to: a segment per strokes key, the PNGs one each."""
    writes = []
    strokes = sorted(
        (d for d in kept if d.input_format is not InputFormat.png and d.strokes_key),
        key=lambda d: str(d.strokes_key),
    )
    for key, group in itertools.groupby(strokes, key=lambda d: str(d.strokes_key)):
        doodles = list(group)
        documents = (
            {
                "id": str(d.id),
                "player_id": d.player_id,
                "format": d.input_format.value,
                "drawing": d.payload,
            }
            for d in doodles
        )
        writes.append(
            ObjectWrite(
                key, segments.encode(documents), segments.CONTENT_TYPE, tuple(d.id for d in doodles)
            )
        )
    for d in kept:
        if d.input_format is InputFormat.png and d.png_key and d.payload_png is not None:
            writes.append(ObjectWrite(d.png_key, d.payload_png, "image/png", (d.id,)))
    return writes


class StoragePause:
    """After a storage failure, writes wait a while instead of each timing out."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._until = float("-inf")

    @property
    def active(self) -> bool:
        return self._clock() < self._until

    def start(self, reason: BaseException) -> None:
        if not self.active:
            log.warning("object storage failed (%s); writes wait %.0fs", reason, self.seconds)
        self._until = self._clock() + self.seconds

    def clear(self) -> None:
        self._until = float("-inf")


def write_objects(
    storage: ObjectStorage, engine: Engine, pause: StoragePause, writes: Sequence[ObjectWrite]
) -> int:
    """Write objects in order, then record their doodles as stored; returns how many
    doodles were recorded. Stops at the first storage failure (the rest stay pending).

    One transaction holds the objects' keys' advisory locks (the ones an erasure takes,
    see services.removal) while it writes: a doodle whose row was deleted meanwhile is
    left out of its segment, its PNG not written, so nothing erased comes back."""
    if not writes or pause.active:
        return 0
    try:
        # The writer's engine may be in autocommit mode: this transaction must be real.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                erasures.lock_object_keys(conn, (w.key for w in writes))
                alive = erasures.existing(conn, [i for w in writes for i in w.ids])
                stored = _put_alive(storage, pause, writes, alive)
                rec.mark_stored(conn, stored)
    except OperationalError as exc:
        # Written but not recorded: the sweeper writes them again, to the same keys.
        log.warning("could not record %d objects' doodles: %s", len(writes), exc)
        return 0
    return len(stored)


def _put_alive(
    storage: ObjectStorage,
    pause: StoragePause,
    writes: Sequence[ObjectWrite],
    alive: set[uuid.UUID],
) -> list[uuid.UUID]:
    """Put each object with only its doodles that still exist; the ids written."""
    stored: list[uuid.UUID] = []
    for write in writes:
        ids = [i for i in write.ids if i in alive]
        if not ids:
            continue
        data = write.data
        if len(ids) < len(write.ids):
            if write.content_type != segments.CONTENT_TYPE:
                continue
            data = segments.without(data, set(write.ids) - set(ids))
        try:
            storage.put(write.key, data, write.content_type)
        except StorageError as exc:
            pause.start(exc)
            break
        stored.extend(ids)
    return stored


def store_kept(
    storage: ObjectStorage, engine: Engine, pause: StoragePause, kept: Sequence[rec.KeptDoodle]
) -> int:
    """Write kept doodles' objects; returns how many doodles were recorded as stored.

    Those without a segment yet get a new one together; the key is committed to their rows
    before anything is written (see the module's docstring)."""
    if not kept or pause.active:
        return 0
    keyless = [d.id for d in kept if d.input_format is not InputFormat.png and not d.strokes_key]
    if keyless:
        key = segments.segment_key()
        try:
            with engine.begin() as conn:
                assigned = rec.assign_strokes_key(conn, keyless, key)
        except OperationalError as exc:
            log.warning("could not give %d doodles a segment: %s", len(keyless), exc)
            return 0
        # Not assigned: erased, no longer kept, or given a segment elsewhere meanwhile.
        kept = [replace(d, strokes_key=key) if d.id in assigned else d for d in kept]
    return write_objects(storage, engine, pause, writes_for(kept))


class ObjectWriter:
    """One background thread per process that writes what batches hand it."""

    def __init__(self, storage: ObjectStorage, engine: Engine, pause: StoragePause) -> None:
        self._storage = storage
        self._engine = engine
        self._pause = pause
        self._queue: queue.Queue[rec.KeptDoodle] = queue.Queue(MAX_WAITING)
        self._idle = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None

    def submit(self, kept: Sequence[rec.KeptDoodle]) -> None:
        if self._pause.active:
            return  # the sweeper writes them once storage is back
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="objects", daemon=True)
            self._thread.start()
        for doodle in kept:
            try:
                with self._idle:
                    self._busy += 1
                self._queue.put_nowait(doodle)
            except queue.Full:
                self._done(1)
                return

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted object is written or given up (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _done(self, n: int) -> None:
        with self._idle:
            self._busy -= n
            if self._busy == 0:
                self._idle.notify_all()

    def _run(self) -> None:
        while True:
            kept = [self._queue.get()]
            until = time.monotonic() + WRITE_EVERY_SECONDS
            while len(kept) < SEGMENT_DOODLES:
                try:
                    kept.append(self._queue.get(timeout=max(until - time.monotonic(), 0)))
                except queue.Empty:
                    break
            try:
                store_kept(self._storage, self._engine, self._pause, kept)
            except Exception:
                log.exception("writing %d doodles failed; the sweeper will retry", len(kept))
            finally:
                self._done(len(kept))
