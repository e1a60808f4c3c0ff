"""Remove doodles from every store: their rows (and labels, reviews, lineage), their
objects, and what Redis still holds of them. A player's erasure and the retention flow
both call `remove_doodles`.

Every step is idempotent: a call that dies half-way is simply called again.

- Objects go one key at a time, under the key's advisory lock, in the same transaction
  as the rows of the doodles it holds: the segment is rewritten without them (deleted
  when nothing is left), a PNG deleted, then the rows deleted. The object writer
  (workers.objects) takes the same lock and writes only the doodles whose rows still
  exist, so a segment written late never brings an erased doodle back.
- A doodle still queued or running is deleted like any other: the worker's claim or
  finish of a missing row does nothing, so it is never answered nor stored.
- Redis: the result lists `doodle:done:<id>` and the queued task messages naming the
  doodles (LREM from the `recognitions` list).

Dataset manifests keep counts and a digest of the ids, never an id, so they stay as they
are; on-disk caches hold model weights only (by checksum), never doodles.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import cast

import redis

from core import segments
from core.storage import ObjectNotFound
from core.tasks import QUEUE, done_channel, message_args
from db import erasures as q
from services.connections import Connections

log = logging.getLogger(__name__)

# A doodle that gets an object key while it is being removed is handled on the next pass.
MAX_PASSES = 5
QUEUE_CHUNK = 1_000


def remove_doodles(
    connections: Connections, redis_client: redis.Redis, recognition_ids: Iterable[uuid.UUID]
) -> Counter[str]:
    """Remove these doodles from Postgres, object storage and Redis; counts per kind
    (recognitions, labels, reviews, model_examples, audit_rows_redacted, segment_lines,
    objects_deleted, results, queued_messages). Unknown ids are skipped."""
    ids = list(dict.fromkeys(recognition_ids))
    counts: Counter[str] = Counter()
    if not ids:
        return counts
    remaining = ids
    for _ in range(MAX_PASSES):
        remaining = _remove_rows_and_objects(connections, remaining, counts)
        if not remaining:
            break
    else:
        raise RuntimeError(f"{len(remaining)} doodles kept changing while being removed")
    counts.update(remove_from_redis(redis_client, ids))
    return counts


def _remove_rows_and_objects(
    connections: Connections, ids: Sequence[uuid.UUID], counts: Counter[str]
) -> list[uuid.UUID]:
    """One pass; returns the doodles still there (they got an object key meanwhile)."""
    with connections.engine.begin() as conn:
        found = q.doodle_objects(conn, ids)
    keys = sorted({k for d in found for k in (d.strokes_key, d.png_key) if k})
    for key in keys:
        _remove_from_object(connections, key, [d.id for d in found], counts)
    with connections.engine.begin() as conn:
        counts.update(q.delete_doodles(conn, [d.id for d in found], keyless_only=True))
        return sorted(q.existing(conn, [d.id for d in found]))


def _remove_from_object(
    connections: Connections, key: str, ids: Sequence[uuid.UUID], counts: Counter[str]
) -> None:
    """Under the key's lock: drop the doodles from the object, then their rows."""
    storage = connections.storage
    with connections.engine.begin() as conn:
        q.lock_object_key(conn, key)
        held = q.held_in(conn, ids, key)
        if not held:
            return
        try:
            data = storage.get(key)
        except ObjectNotFound:
            data = None  # not written yet (the writer will find the rows gone), or gone
        if data is not None:
            if key.endswith(".png"):
                storage.delete(key)
                counts["objects_deleted"] += 1
            else:
                rest = segments.without(data, held)
                dropped = _lines(data) - _lines(rest)
                if not rest:
                    storage.delete(key)
                    counts["objects_deleted"] += 1
                elif dropped:
                    storage.put(key, rest, segments.CONTENT_TYPE)
                    counts["segments_rewritten"] += 1
                counts["segment_lines"] += dropped
        counts.update(q.delete_doodles(conn, held, keyless_only=False))


def _lines(data: bytes) -> int:
    return sum(1 for _ in segments.decode(data))


def remove_from_redis(redis_client: redis.Redis, ids: Sequence[uuid.UUID]) -> Counter[str]:
    """Result lists and queued task messages that name the doodles."""
    counts: Counter[str] = Counter()
    wanted = {str(i) for i in ids}
    for start in range(0, len(ids), QUEUE_CHUNK):
        chunk = ids[start : start + QUEUE_CHUNK]
        counts["results"] += int(redis_client.delete(*(done_channel(i) for i in chunk)))
    # The queue may move while it is read: a message missed here names a deleted row,
    # which a worker skips.
    naming: set[bytes] = set()
    start = 0
    while messages := cast(list[bytes], redis_client.lrange(QUEUE, start, start + QUEUE_CHUNK - 1)):
        naming.update(raw for raw in messages if _message_recognition_id(raw) in wanted)
        start += len(messages)
    for raw in naming:
        counts["queued_messages"] += int(redis_client.lrem(QUEUE, 0, raw))  # type: ignore[arg-type]
    return counts


def _message_recognition_id(raw: bytes) -> str | None:
    """The recognition id a task message carries, or None."""
    args = message_args(raw)
    return str(args[0]) if args else None
