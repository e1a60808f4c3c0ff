"""Object keys: one place that decides where things live in object storage.

Doodles sent as strokes are kept in segments (`core.segments`, many doodles an object);
doodles sent as PNG keep their image under `players/<player_id>/`. The rows of
`recognitions` say which object holds each doodle, so export and erasure start there.
"""

from __future__ import annotations

import uuid

ANONYMOUS = "_anonymous"


def player_prefix(player_id: str | None) -> str:
    return f"players/{player_id or ANONYMOUS}/"


def recognition_prefix(player_id: str | None, recognition_id: uuid.UUID | str) -> str:
    return f"{player_prefix(player_id)}recognitions/{recognition_id}/"


def png_key(player_id: str | None, recognition_id: uuid.UUID | str) -> str:
    return recognition_prefix(player_id, recognition_id) + "drawing.png"


def model_artifact_key(checksum: str) -> str:
    # Content-addressed: importing the same weights twice stores them once.
    return f"models/{checksum}/weights.pt"
