"""Segments: many kept doodles in one object, one JSON line each.

Writing an object costs a request to the storage server (and, on S3, a PUT's price),
whatever its size, so workers write the doodles of a batch as one segment instead of one
object each. A doodle's row names its segment (`strokes_key`); reading one doodle reads
its segment and picks its line. Segments are written once and only ever rewritten to
drop lines (a player's erasure): `without` gives the segment minus some doodles.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

CONTENT_TYPE = "application/x-ndjson"


def segment_key(now: dt.datetime | None = None) -> str:
    """A new segment's key, by day: `segments/2026/11/25/<uuid>.ndjson`."""
    now = now or dt.datetime.now(dt.UTC)
    return f"segments/{now:%Y/%m/%d}/{uuid.uuid4().hex}.ndjson"


def encode(documents: Iterable[dict[str, Any]]) -> bytes:
    """One line a doodle; each document carries its `id`."""
    return b"".join(json.dumps(d, separators=(",", ":")).encode() + b"\n" for d in documents)


def decode(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        if line.strip():
            yield json.loads(line)


def find(data: bytes, doodle_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The document of one doodle in a segment, or None."""
    wanted = str(doodle_id)
    return next((d for d in decode(data) if d.get("id") == wanted), None)


def without(data: bytes, doodle_ids: Iterable[uuid.UUID | str]) -> bytes:
    """The segment minus some doodles (empty bytes when none is left)."""
    dropped = {str(i) for i in doodle_ids}
    return encode(d for d in decode(data) if d.get("id") not in dropped)
