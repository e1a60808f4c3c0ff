"""A recorded doodle's processing (the workers' side): claim, finish, object, sweep.

The recognition path is hot, so each step is one SQL statement for a whole batch:
`claim_batch`, `finish`, `mark_stored`. Every function takes a Connection (or Session)
and leaves committing to the caller. Recording a doodle is `db.recognitions`.

A doodle's life: queued -> running (claimed by a worker) -> done | failed. With consent
to store, a done doodle keeps its strokes in the row until its object is written
(`stored_at`); an object-storage outage only delays that write.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db.models import InputFormat, RecognitionStatus

# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a recognition it claimed."""

    id: uuid.UUID
    player_id: str | None
    input_format: InputFormat
    payload: Any
    payload_png: bytes | None
    store: bool
    created_at: dt.datetime
    started_at: dt.datetime
    attempts: int


_CLAIMED_COLUMNS = """
    id, player_id, input_format, payload, payload_png, consent_store, created_at, started_at,
    attempts
"""


def _claimed(rows: Iterable[Any]) -> list[Claimed]:
    return [
        Claimed(
            id=r.id,
            player_id=r.player_id,
            input_format=InputFormat(r.input_format),
            payload=r.payload,
            payload_png=r.payload_png,
            store=r.consent_store,
            created_at=r.created_at,
            started_at=r.started_at,
            attempts=r.attempts,
        )
        for r in rows
    ]


_CLAIM_QUEUED = text(
    f"""
UPDATE recognitions SET status = 'running', started_at = now(), attempts = attempts + 1
WHERE id = ANY(:ids) AND status = 'queued'
RETURNING {_CLAIMED_COLUMNS}
"""
)

_CLAIM_ABANDONED = text(
    f"""
UPDATE recognitions SET started_at = now(), attempts = attempts + 1
WHERE id = :id AND status = 'running' AND started_at < now() - make_interval(secs => :lease)
RETURNING {_CLAIMED_COLUMNS}
"""
)


def claim_batch(conn: Connection | Session, ids: Sequence[uuid.UUID]) -> list[Claimed]:
    """Mark the queued ones among `ids` running, counting an attempt; returns them.

    Done, failed and missing doodles, and doodles another worker is on, are not returned.
    """
    return _claimed(conn.execute(_CLAIM_QUEUED, {"ids": list(ids)}))


def claim_abandoned(
    conn: Connection | Session, recognition_id: uuid.UUID, lease_seconds: float
) -> Claimed | None:
    """Claim a doodle whose worker died holding it (running, lease expired), or None.

    Its attempts go up once more: a doodle that keeps killing workers is given up on.
    """
    found = _claimed(conn.execute(_CLAIM_ABANDONED, {"id": recognition_id, "lease": lease_seconds}))
    return found[0] if found else None


_EXTEND_LEASE = text(
    """
UPDATE recognitions SET started_at = now()
WHERE id = ANY(:ids) AND status = 'running' AND started_at = :claimed_at
RETURNING started_at
"""
)


def extend_lease(
    conn: Connection | Session, ids: Sequence[uuid.UUID], claimed_at: dt.datetime
) -> tuple[dt.datetime | None, int]:
    """Renew the lease of the running doodles among `ids` that are still held by the claim
    made at `claimed_at` (their started_at, which the claim set): it starts again now.

    Returns the claim's new time (None when none is held any longer) and how many were
    renewed. Finished doodles, and those another worker took over after the lease lapsed
    (their started_at is that worker's claim), are left alone. The row's started_at is thus
    when its lease last began; a doodle's queue time is in its timings.
    """
    rows = conn.execute(_EXTEND_LEASE, {"ids": list(ids), "claimed_at": claimed_at}).all()
    return (rows[0].started_at if rows else None), len(rows)


@dataclass(frozen=True)
class Outcome:
    """How a worker finished a doodle: a prediction, or an error (then status failed)."""

    id: uuid.UUID
    label: str | None = None
    confidence: float | None = None
    top: list[dict[str, Any]] | None = None
    model_version_id: int | None = None
    timings: dict[str, float] | None = None
    # The 28x28 uint8 raster (784 bytes); only with consent to store, else None.
    bitmap: bytes | None = None
    error: str | None = None
    # Where a kept doodle is to be written (its segment, or its PNG's key).
    strokes_key: str | None = None
    png_key: str | None = None

    @property
    def status(self) -> RecognitionStatus:
        return RecognitionStatus.failed if self.error else RecognitionStatus.done

    def as_record(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "status": self.status.value,
            "label": self.label,
            "confidence": self.confidence,
            "top": self.top,
            "model_version_id": self.model_version_id,
            "timings": self.timings,
            "bitmap": base64.b64encode(self.bitmap).decode() if self.bitmap else None,
            "error": self.error[:2000] if self.error else None,
            "strokes_key": self.strokes_key,
            "png_key": self.png_key,
        }


# A done doodle with consent to store keeps its payload until its object is written. Its
# object's key is recorded before the first write (a PNG's here, a segment's by the writer,
# assign_strokes_key), so that a write that is retried overwrites, never duplicates.
# Consent to store is that of the drawing's grant AND of the player's grant in force now:
# a doodle whose player withdrew (or was erased) while it waited is not kept, its strokes,
# raster and object keys leave the row with the answer.
_FINISH = text(
    """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
        id uuid, status text, label text, confidence float8, top jsonb, model_version_id int,
        timings jsonb, bitmap text, error text, strokes_key text, png_key text
    )
),
keep AS (
    SELECT v.id, v.status = 'done' AND r.consent_store AND coalesce(c.store, false) AS store
    FROM v JOIN recognitions AS r ON r.id = v.id
    LEFT JOIN LATERAL (
        SELECT store FROM consents
        WHERE player_id = r.player_id AND withdrawn_at IS NULL
        ORDER BY granted_at DESC, id DESC
        LIMIT 1
    ) AS c ON true
)
UPDATE recognitions AS r SET
    status = CAST(v.status AS recognition_status),
    label = v.label, confidence = v.confidence, top = v.top,
    model_version_id = v.model_version_id, timings = v.timings,
    error = v.error, finished_at = clock_timestamp(),
    consent_store = keep.store, consent_train = r.consent_train AND keep.store,
    bitmap = CASE WHEN keep.store THEN decode(v.bitmap, 'base64') END,
    strokes_key = CASE WHEN keep.store THEN v.strokes_key END,
    png_key = CASE WHEN keep.store THEN v.png_key END,
    payload = CASE WHEN keep.store THEN r.payload END,
    payload_png = CASE WHEN keep.store THEN r.payload_png END
FROM v JOIN keep ON keep.id = v.id
WHERE r.id = v.id AND r.status = 'running'
RETURNING r.id, r.finished_at, r.consent_store
"""
)


@dataclass(frozen=True)
class Finished:
    """A doodle this call finished: when, and whether it is kept (its object to write)."""

    finished_at: dt.datetime
    stored: bool


def finish(conn: Connection | Session, outcomes: Sequence[Outcome]) -> dict[uuid.UUID, Finished]:
    """Record outcomes of running doodles; {id: Finished} of those this call finished.

    A doodle another delivery finished first is left alone: the first result stands. A
    doodle is kept only if its player's consent in force still allows storing it.
    """
    if not outcomes:
        return {}
    rows = json.dumps([o.as_record() for o in outcomes])
    return {
        r.id: Finished(r.finished_at, r.consent_store)
        for r in conn.execute(_FINISH, {"rows": rows})
    }


_RELEASE = text(
    """
UPDATE recognitions SET status = 'queued', attempts = greatest(attempts - 1, 0),
    enqueued_at = now()
WHERE id = ANY(:ids) AND status = 'running'
"""
)


def release(conn: Connection | Session, ids: Sequence[uuid.UUID]) -> None:
    """Give claimed doodles back after an infrastructure failure: the attempt did not count."""
    if ids:
        conn.execute(_RELEASE, {"ids": list(ids)})


def fail(conn: Connection | Session, recognition_id: uuid.UUID, reason: str) -> None:
    """Give up on a doodle (it kept killing workers): failed, its payload dropped."""
    finish(conn, [Outcome(recognition_id, error=reason)])


# --------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class KeptDoodle:
    """A finished doodle with consent to store, and where its object is to be written."""

    id: uuid.UUID
    player_id: str | None
    input_format: InputFormat
    payload: Any
    payload_png: bytes | None
    strokes_key: str | None
    png_key: str | None


_PENDING = text(
    """
SELECT id, player_id, input_format, payload, payload_png, strokes_key, png_key
FROM recognitions
WHERE status = 'done' AND consent_store AND stored_at IS NULL AND finished_at < :before
ORDER BY finished_at
LIMIT :limit
"""
)


def pending_objects(
    conn: Connection | Session, finished_before: dt.datetime, limit: int = 200
) -> list[KeptDoodle]:
    """Kept doodles whose object is still to be written, finished before a moment."""
    rows = conn.execute(_PENDING, {"before": finished_before, "limit": limit})
    return [
        KeptDoodle(
            r.id,
            r.player_id,
            InputFormat(r.input_format),
            r.payload,
            r.payload_png,
            r.strokes_key,
            r.png_key,
        )
        for r in rows
    ]


_ASSIGN_STROKES_KEY = text(
    """
UPDATE recognitions SET strokes_key = :key
WHERE id = ANY(:ids) AND strokes_key IS NULL AND stored_at IS NULL
    AND status = 'done' AND consent_store
RETURNING id
"""
)


def assign_strokes_key(
    conn: Connection | Session, ids: Sequence[uuid.UUID], key: str
) -> set[uuid.UUID]:
    """Decide that the kept doodles among `ids` that have no segment yet go to `key`;
    returns those. A doodle that has one keeps it: a retried write overwrites the same
    object, never leaves a second copy."""
    if not ids:
        return set()
    return {r.id for r in conn.execute(_ASSIGN_STROKES_KEY, {"ids": list(ids), "key": key})}


_MARK_STORED = text(
    """
UPDATE recognitions SET stored_at = clock_timestamp(), payload = NULL, payload_png = NULL
WHERE id = ANY(:ids) AND stored_at IS NULL
"""
)


def mark_stored(conn: Connection | Session, ids: Sequence[uuid.UUID]) -> None:
    """Their objects are written: drop the doodles from their rows."""
    if ids:
        conn.execute(_MARK_STORED, {"ids": list(ids)})


# --------------------------------------------------------------------------- sweeper

_STALE = text(
    """
WITH stale AS (
    SELECT id FROM recognitions
    WHERE (status = 'queued' AND enqueued_at < :queued_before)
       OR (status = 'running' AND started_at < :running_before
           AND enqueued_at < :running_before)
    ORDER BY enqueued_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE recognitions AS r SET enqueued_at = now() FROM stale WHERE r.id = stale.id
RETURNING r.id
"""
)


def claim_stale(
    conn: Connection | Session,
    *,
    queued_before: dt.datetime,
    running_before: dt.datetime,
    limit: int = 500,
) -> list[uuid.UUID]:
    """Unfinished work to send again: queued and not sent since `queued_before`, or running
    on a worker presumed dead (claimed and last sent before `running_before`).

    Marks them sent now and returns them. SKIP LOCKED: two sweepers never pick the same.
    """
    rows = conn.execute(
        _STALE,
        {"queued_before": queued_before, "running_before": running_before, "limit": limit},
    )
    return [r.id for r in rows]
