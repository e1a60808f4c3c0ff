"""What the load generators send: real Quick, Draw! drawings of the seed's words."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchkit import REPO_ROOT

Drawing = list[Any]  # simplified strokes: [[[x...], [y...]], ...]


def shared_data_dir() -> Path:
    return Path(os.environ.get("DOODLE_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def seed_words() -> list[str]:
    return [str(w) for w in json.loads((REPO_ROOT / "ml" / "seed" / "classes.json").read_text())]


def load_drawings(words: Sequence[str]) -> list[tuple[str, Drawing]]:
    """(word, simplified strokes) of every sample drawing of the words, interleaved by word."""
    folder = shared_data_dir() / "quickdraw" / "simplified"
    per_word = []
    for word in words:
        path = folder / f"{word}.ndjson"
        if not path.is_file():
            raise SystemExit(f"missing {path}; set DOODLE_SHARED_DATA to the shared data folder")
        with path.open(encoding="utf-8") as f:
            per_word.append([(word, json.loads(line)["drawing"]) for line in f if line.strip()])
    # Round-robin over the words, so any prefix of the sequence mixes every word.
    out: list[tuple[str, Drawing]] = []
    for group in itertools.zip_longest(*per_word):
        out.extend(item for item in group if item is not None)
    return out


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def request_bodies(
    drawings: Sequence[tuple[str, Drawing]], players: int = 100, player_id: str | None = None
) -> list[bytes]:
    """The same recognition body for both systems (the baseline ignores what it does not need).

    `player_id`: the one player every doodle names (the product issued it; its secret goes
    in a header). Without it, `players` made-up ids, which only a product from before
    server-issued ids takes."""
    return [
        _dumps(
            {
                "drawing": drawing,
                "word": word,
                "player_id": player_id or f"bench-player-{i % players}",
                "consent": {"store": True, "train": True, "version": "v1"},
            }
        )
        for i, (word, drawing) in enumerate(drawings)
    ]


def distinct_points(drawing: Drawing) -> int:
    return len(
        {(x, y) for stroke in drawing if stroke for x, y in zip(stroke[0], stroke[1], strict=False)}
    )


def partial_drawings(drawing: Drawing, min_points: int = 2) -> list[Drawing]:
    """The drawing as a player's client sees it grow: its first k strokes, k = 1..all.

    Prefixes with fewer than `min_points` distinct points are left out (the API refuses them).
    """
    return [
        drawing[:k]
        for k in range(1, len(drawing) + 1)
        if distinct_points(drawing[:k]) >= min_points
    ]


def guess_bodies(drawings: Sequence[tuple[str, Drawing]], limit: int | None = None) -> list[bytes]:
    """`POST /v1/guesses` bodies: every growing prefix of each drawing, drawing after drawing."""
    out: list[bytes] = []
    for _word, drawing in drawings:
        out.extend(_dumps({"drawing": part}) for part in partial_drawings(drawing))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out
