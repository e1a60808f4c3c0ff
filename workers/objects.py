"""Writing kept doodles to object storage, off the recognition path.

A batch hands its objects to the process's `ObjectWriter` and moves on; one background
thread writes them one after another (threads would only fight over the GIL) and records
each run of written objects in one statement. Nothing is lost if the process dies or
storage is down: until `stored_at` is set the strokes stay in the row, and the sweeper
writes whatever is still pending (`store_pending`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from core import keys
from core.storage import ObjectStorage, StorageError
from db import recognitions as rec
from db.models import InputFormat

log = logging.getLogger(__name__)

# Objects waiting for the writer; beyond this the sweeper takes over (memory stays bounded).
MAX_WAITING = 10_000
# Written objects recorded per statement.
RECORD_EVERY = 64


@dataclass(frozen=True)
class PendingWrite:
    stored: rec.StoredObject
    data: bytes
    content_type: str

    @property
    def key(self) -> str:
        key = self.stored.strokes_key or self.stored.png_key
        assert key is not None
        return key


def object_for(
    recognition_id: uuid.UUID,
    player_id: str | None,
    input_format: InputFormat,
    payload: Any,
    payload_png: bytes | None,
) -> PendingWrite:
    """The one object a kept doodle becomes: its strokes as JSON, or the PNG it came as."""
    if input_format is InputFormat.png:
        assert payload_png is not None
        key = keys.png_key(player_id, recognition_id)
        return PendingWrite(rec.StoredObject(recognition_id, png_key=key), payload_png, "image/png")
    document = {"id": str(recognition_id), "format": input_format.value, "drawing": payload}
    return PendingWrite(
        rec.StoredObject(recognition_id, strokes_key=keys.strokes_key(player_id, recognition_id)),
        json.dumps(document, separators=(",", ":")).encode(),
        "application/json",
    )


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
    storage: ObjectStorage, engine: Engine, pause: StoragePause, writes: Sequence[PendingWrite]
) -> int:
    """Write objects in order, then record the written ones in one statement; returns how
    many were recorded. Stops at the first storage failure (the rest stay pending)."""
    written: list[rec.StoredObject] = []
    for write in writes:
        if pause.active:
            break
        try:
            storage.put(write.key, write.data, write.content_type)
        except StorageError as exc:
            pause.start(exc)
            break
        written.append(write.stored)
    if not written:
        return 0
    try:
        with engine.begin() as conn:
            rec.mark_stored(conn, written)
    except OperationalError as exc:
        # Written but not recorded: the sweeper writes them again (puts are idempotent).
        log.warning("could not record %d written objects: %s", len(written), exc)
        return 0
    return len(written)


class ObjectWriter:
    """One background thread per process that writes what batches hand it."""

    def __init__(self, storage: ObjectStorage, engine: Engine, pause: StoragePause) -> None:
        self._storage = storage
        self._engine = engine
        self._pause = pause
        self._queue: queue.Queue[PendingWrite] = queue.Queue(MAX_WAITING)
        self._idle = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self.written = 0

    def submit(self, writes: Sequence[PendingWrite]) -> None:
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
                self.written += write_objects(self._storage, self._engine, self._pause, writes)
            except Exception:
                log.exception("writing %d objects failed; the sweeper will retry", len(writes))
            finally:
                self._done(len(writes))
