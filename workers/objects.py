"""Writing kept doodles to object storage, off the recognition path.

The doodles a batch kept go to object storage as one segment (`core.segments`): one
request to the storage server for the batch instead of one a doodle. The segment's key
is decided when the batch is finished (and recorded in the rows), so a write that is
retried, here or by the sweeper, overwrites the same object and never leaves a stray
copy. Doodles sent as PNG keep their image as an object of its own.

A batch hands its objects to the process's `ObjectWriter` and moves on; one background
thread writes them and records each run of written objects in one statement. Nothing is
lost if the process dies or storage is down: until `stored_at` is set the strokes stay
in the row, and the sweeper writes whatever is still pending (`store_pending`).

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
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from core import segments
from core.storage import ObjectStorage, StorageError
from db import erasures
from db import processing as rec
from db.models import InputFormat

log = logging.getLogger(__name__)

# Objects waiting for the writer; beyond this the sweeper takes over (memory stays bounded).
MAX_WAITING = 1_000
# Objects whose doodles are recorded as stored in one statement.
RECORD_EVERY = 16


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


class ObjectWriter:
    """One background thread per process that writes what batches hand it."""

    def __init__(self, storage: ObjectStorage, engine: Engine, pause: StoragePause) -> None:
        self._storage = storage
        self._engine = engine
        self._pause = pause
        self._queue: queue.Queue[ObjectWrite] = queue.Queue(MAX_WAITING)
        self._idle = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None

    def submit(self, writes: Sequence[ObjectWrite]) -> None:
        if self._pause.active:
            return  # the sweeper writes them once storage is back
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="objects", daemon=True)
            self._thread.start()
        for write in writes:
            try:
                with self._idle:
                    self._busy += 1
                self._queue.put_nowait(write)
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
            writes = [self._queue.get()]
            while len(writes) < RECORD_EVERY:
                try:
                    writes.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                write_objects(self._storage, self._engine, self._pause, writes)
            except Exception:
                log.exception("writing %d objects failed; the sweeper will retry", len(writes))
            finally:
                self._done(len(writes))
