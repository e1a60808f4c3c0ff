"""core.segments: many doodles in one object, one JSON line each."""

from __future__ import annotations

import datetime as dt
import uuid

from core import segments

A, B, C = (str(uuid.uuid4()) for _ in range(3))
DOCS = [
    {"id": A, "player_id": "p1", "format": "simplified", "drawing": [[[0, 9], [0, 9]]]},
    {"id": B, "player_id": "p2", "format": "raw", "drawing": [[[5, 6], [7, 8], [0, 16]]]},
    {"id": C, "player_id": None, "format": "simplified", "drawing": [[[1, 2], [3, 4]]]},
]


def test_round_trip_keeps_order_and_content() -> None:
    data = segments.encode(DOCS)
    assert data.count(b"\n") == 3
    assert list(segments.decode(data)) == DOCS


def test_find_one_doodle() -> None:
    data = segments.encode(DOCS)
    assert segments.find(data, uuid.UUID(B)) == DOCS[1]
    assert segments.find(data, uuid.uuid4()) is None


def test_without_drops_doodles_and_can_empty_a_segment() -> None:
    data = segments.encode(DOCS)
    assert list(segments.decode(segments.without(data, [A, uuid.UUID(C)]))) == [DOCS[1]]
    assert segments.without(data, [A, B, C]) == b""


def test_keys_are_new_and_filed_by_day() -> None:
    day = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    first, second = segments.segment_key(day), segments.segment_key(day)
    assert first != second
    assert first.startswith("segments/2026/11/25/") and first.endswith(".ndjson")
