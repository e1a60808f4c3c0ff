"""Recognise one doodle: raster -> model -> Postgres (+ object storage with consent).

Idempotent: running it twice for the same id, or concurrently, records one result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import keys
from db import recognitions as rec
from db.models import InputFormat, RecognitionStatus
from ml.raster import bitmap_from_png, rasterize, render_png
from ml.strokes import to_simplified
from workers.runtime import WorkerRuntime
from workers.signatures import done_channel

log = logging.getLogger(__name__)

DONE_TTL_SECONDS = 120
BUSY = "busy"


@dataclass(frozen=True)
class Claimed:
    """What the worker needs of a recognition, copied out of the claiming transaction."""

    id: uuid.UUID
    player_id: str | None
    input_format: InputFormat
    payload: Any
    payload_png: bytes | None
    store: bool
    created_at: dt.datetime
    started_at: dt.datetime


def _claim(
    runtime: WorkerRuntime, recognition_id: uuid.UUID
) -> Claimed | RecognitionStatus | str | None:
    """Mark the row running and count the attempt, in its own committed transaction.

    A row another worker started less than a task time limit ago is BUSY: that worker is
    still on it (or will be found dead later); counting it as an attempt would let
    duplicate deliveries exhaust the attempts of a healthy doodle.
    """
    settings = runtime.settings
    now = dt.datetime.now(dt.UTC)
    with runtime.sessions.begin() as s:
        row = rec.lock_for_processing(s, recognition_id)
        if row is None:
            return None
        if row.status in (RecognitionStatus.done, RecognitionStatus.failed):
            return row.status
        if (
            row.status is RecognitionStatus.running
            and row.started_at is not None
            and (now - row.started_at).total_seconds() < settings.task_time_limit
        ):
            return BUSY
        row.attempts += 1
        if row.attempts > runtime.settings.max_attempts:
            rec.mark_failed(s, row, f"gave up after {runtime.settings.max_attempts} attempts")
            return RecognitionStatus.failed
        row.status = RecognitionStatus.running
        row.started_at = now
        return Claimed(
            id=row.id,
            player_id=row.player_id,
            input_format=row.input_format,
            payload=row.payload,
            payload_png=row.payload_png,
            store=row.consent_store,
            created_at=row.created_at,
            started_at=row.started_at,
        )


def _bitmap(claimed: Claimed) -> tuple[np.ndarray, list | None]:
    if claimed.input_format is InputFormat.png:
        if claimed.payload_png is None:
            raise ValueError("recognition has no image")
        return bitmap_from_png(claimed.payload_png), None
    simplified = to_simplified(claimed.payload)
    return rasterize(simplified), simplified


def _store_objects(
    runtime: WorkerRuntime, claimed: Claimed, simplified: list | None
) -> tuple[str | None, str | None]:
    """Keep the doodle in object storage; only called with consent to store."""
    png_key = keys.png_key(claimed.player_id, claimed.id)
    if claimed.input_format is InputFormat.png:
        assert claimed.payload_png is not None
        runtime.storage.put(png_key, claimed.payload_png, "image/png")
        return None, png_key
    strokes_key = keys.strokes_key(claimed.player_id, claimed.id)
    document = {
        "id": str(claimed.id),
        "format": claimed.input_format.value,
        "drawing": claimed.payload,
        "simplified": simplified,
    }
    runtime.storage.put(strokes_key, json.dumps(document).encode(), "application/json")
    assert simplified is not None
    runtime.storage.put(png_key, render_png(simplified), "image/png")
    return strokes_key, png_key


def _finish(runtime: WorkerRuntime, recognition_id: uuid.UUID, outcome: rec.Outcome | str) -> None:
    with runtime.sessions.begin() as s:
        row = rec.lock_for_processing(s, recognition_id)
        # A duplicate delivery may have finished first: the first result stands.
        if row is None or row.status in (RecognitionStatus.done, RecognitionStatus.failed):
            return
        if isinstance(outcome, str):
            rec.mark_failed(s, row, outcome)
        else:
            rec.mark_done(s, row, outcome)


def notify_done(runtime: WorkerRuntime, recognition_id: uuid.UUID) -> None:
    """Wake any API request waiting on this recognition (Prefer: wait)."""
    channel = done_channel(recognition_id)
    pipe = runtime.redis.pipeline()
    pipe.rpush(channel, b"1")
    pipe.expire(channel, DONE_TTL_SECONDS)
    pipe.execute()


def recognize(runtime: WorkerRuntime, recognition_id: uuid.UUID) -> str:
    """Process one recognition; returns the status it ends in."""
    claimed = _claim(runtime, recognition_id)
    if claimed is None:
        log.warning("recognition %s not found; dropping the message", recognition_id)
        return "missing"
    if claimed == BUSY:
        return BUSY
    if isinstance(claimed, RecognitionStatus):
        notify_done(runtime, recognition_id)
        return claimed.value
    assert isinstance(claimed, Claimed)

    t0 = time.perf_counter()
    try:
        bitmap, simplified = _bitmap(claimed)
    except (ValueError, TypeError, IndexError) as exc:
        # Bad doodles are refused by the API; anything that still slips through fails
        # cleanly instead of being retried forever.
        _finish(runtime, recognition_id, f"unreadable drawing: {exc}")
        notify_done(runtime, recognition_id)
        return RecognitionStatus.failed.value
    t1 = time.perf_counter()
    model = runtime.models.current()
    prediction = model.predictor.predict(bitmap[np.newaxis])[0]
    t2 = time.perf_counter()
    strokes_key = png_key = None
    if claimed.store:
        strokes_key, png_key = _store_objects(runtime, claimed, simplified)
    t3 = time.perf_counter()

    queued = (claimed.started_at - claimed.created_at).total_seconds()
    outcome = rec.Outcome(
        label=prediction.label,
        confidence=prediction.confidence,
        top=prediction.as_dict()["top"],
        model_version_id=model.version_id,
        timings={
            "queue_ms": round(max(queued, 0.0) * 1000, 2),
            "raster_ms": round((t1 - t0) * 1000, 2),
            "inference_ms": round((t2 - t1) * 1000, 2),
            "storage_ms": round((t3 - t2) * 1000, 2),
        },
        strokes_key=strokes_key,
        png_key=png_key,
        # Derived from the doodle: kept (for training) only with consent to store.
        bitmap=np.ascontiguousarray(bitmap, dtype=np.uint8).tobytes() if claimed.store else None,
    )
    _finish(runtime, recognition_id, outcome)
    notify_done(runtime, recognition_id)
    return RecognitionStatus.done.value


def sweep_stale(runtime: WorkerRuntime, enqueue) -> int:
    """Re-enqueue recognitions nobody finished in time; fail the ones that keep crashing."""
    settings = runtime.settings
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.sweeper_stale_seconds)
    with runtime.sessions.begin() as s:
        failed = rec.fail_exhausted(s, settings.max_attempts)
        stale = rec.claim_stale(s, cutoff)
    for recognition_id in stale:
        enqueue(recognition_id)
    if stale or failed:
        log.warning("sweeper re-enqueued %d stale recognitions, failed %d", len(stale), failed)
    return len(stale)
