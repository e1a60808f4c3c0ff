"""The flywheel benchmark's data: N game doodles dealt over the words, rasterised (with small
distortions past the real drawings), recognised by the seed model and inserted by COPY as
finished recognitions; and the base dataset's sources (scripts/flywheel_bench.py).

`deal_words` is unit-tested in tests/unit/test_flywheel_bench.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOODLES_PER_PLAYER = 20
CONSENT_VERSION = "2026-11"


def deal_words(words: Sequence[str], per_word: Sequence[int], n: int) -> list[tuple[str, int, int]]:
    """The first n doodles, dealt round-robin over the words: (word, drawing index, copy).

    Doodle i is word i % len(words); each word's doodles cycle through its `per_word[w]` real
    drawings, `copy` counting the rounds (0 for the first pass: the real drawing as is). The
    first n of a larger deal are the same n doodles, so sizes share their doodles.
    """
    if len(words) != len(per_word) or not words:
        raise ValueError("need one drawing count per word, and at least one word")
    if any(c < 1 for c in per_word):
        raise ValueError("every word needs at least one drawing")
    out = []
    for i in range(n):
        w = i % len(words)
        k = i // len(words)
        out.append((words[w], k % per_word[w], k // per_word[w]))
    return out


def base_sources(shared: Path, words: Sequence[str]) -> list[str]:
    """.npy bitmaps for the words that have them, simplified ndjson for the others (never
    both for a word: the first bitmap rows are the ndjson drawings)."""
    bitmaps = shared / "quickdraw" / "bitmaps"
    manifest = json.loads((bitmaps / "manifest.json").read_text())
    return [
        str(bitmaps / f"{w}.npy")
        if w in manifest
        else str(shared / "quickdraw" / "simplified" / f"{w}.ndjson")
        for w in words
    ]


def _read_drawings(shared: Path, word: str) -> list[Any]:
    path = shared / "quickdraw" / "simplified" / f"{word}.ndjson"
    return [json.loads(line)["drawing"] for line in path.read_text().splitlines() if line.strip()]


def _jitter(drawing: Any, rng: Any) -> list[list[list[float]]]:
    """A small random affine distortion (rotation +-12 deg, x/y scale 0.85..1.15, shear
    +-0.1) of simplified strokes; the rasteriser re-centres and re-fits the result."""
    import numpy as np

    angle = math.radians(rng.uniform(-12, 12))
    sx, sy = rng.uniform(0.85, 1.15, size=2)
    shear = rng.uniform(-0.1, 0.1)
    c, s = math.cos(angle), math.sin(angle)
    matrix = np.array([[c, -s], [s, c]]) @ np.array([[sx, shear], [0.0, sy]])
    out = []
    for stroke in drawing:
        points = np.asarray(stroke[:2], dtype=np.float64)
        moved = matrix @ (points - 127.5) + 127.5
        out.append([moved[0].tolist(), moved[1].tolist()])
    return out


def make_bitmaps(
    shared: Path, words: Sequence[str], n: int, *, jitter: bool, seed: int
) -> tuple[list[str], Any]:
    """The words and (n, 28, 28) uint8 bitmaps of the first n doodles of the deal."""
    import numpy as np

    from ml.raster import rasterize

    drawings = {w: _read_drawings(shared, w) for w in words}
    plan = deal_words(words, [len(drawings[w]) for w in words], n)
    rng = np.random.default_rng(seed)
    cache: dict[tuple[str, int], Any] = {}
    bitmaps = np.empty((n, 28, 28), dtype=np.uint8)
    for i, (word, index, copy) in enumerate(plan):
        if copy == 0 or not jitter:
            if (word, index) not in cache:
                cache[(word, index)] = rasterize(drawings[word][index])
            bitmaps[i] = cache[(word, index)]
        else:
            bitmaps[i] = rasterize(_jitter(drawings[word][index], rng))
    return [w for w, _, _ in plan], bitmaps


@dataclass(frozen=True)
class Doodles:
    words: list[str]  # the prompt word of each doodle
    bitmaps: Any  # (N, 28, 28) uint8
    predictions: list[Any]  # the seed model's answer to each (what the worker stored)


def make_doodles(shared: Path, words: Sequence[str], n: int, *, jitter: bool, seed: int) -> Doodles:
    from ml.network import load_model, seed_classes, seed_weights_path
    from ml.predict import Predictor

    doodle_words, bitmaps = make_bitmaps(shared, words, n, jitter=jitter, seed=seed)
    classes = seed_classes()
    model = load_model(seed_weights_path().read_bytes(), len(classes))
    return Doodles(doodle_words, bitmaps, Predictor(model, classes).predict(bitmaps))


def insert_doodles(
    engine: Any, words: Sequence[str], bitmaps: Any, model_version_id: int, predictions: Any
) -> dict[str, Any]:
    """Players, their consents (store + train) and N finished game recognitions, by COPY."""
    n = len(words)
    players = max(1, math.ceil(n / DOODLES_PER_PLAYER))
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO players (id) "
                "SELECT 'bench-player-' || g FROM generate_series(0, %s) g",
                (players - 1,),
            )
            cur.execute(
                "INSERT INTO consents (player_id, version, store, train) "
                "SELECT 'bench-player-' || g, %s, true, true FROM generate_series(0, %s) g "
                "RETURNING id, player_id",
                (CONSENT_VERSION, players - 1),
            )
            consent_of = {player: cid for cid, player in cur.fetchall()}
            columns = (
                "id, origin, player_id, consent_id, consent_store, consent_train, word, "
                "input_format, status, attempts, label, confidence, top, model_version_id, "
                "bitmap, created_at, enqueued_at, started_at, finished_at"
            )
            with cur.copy(f"COPY recognitions ({columns}) FROM STDIN") as copy:
                for i in range(n):
                    player = f"bench-player-{i // DOODLES_PER_PLAYER}"
                    at = now - dt.timedelta(milliseconds=10 * (n - i))
                    p = predictions[i]
                    top = json.dumps([{"label": lb, "confidence": c} for lb, c in p.top])
                    copy.write_row(
                        (
                            uuid.uuid4(),
                            "game",
                            player,
                            consent_of[player],
                            True,
                            True,
                            words[i],
                            "simplified",
                            "done",
                            1,
                            p.label,
                            p.confidence,
                            top,
                            model_version_id,
                            bitmaps[i].tobytes(),
                            at,
                            at,
                            at,
                            at + dt.timedelta(milliseconds=5),
                        )
                    )
        conn.commit()
    finally:
        raw.close()
    return {"players": players, "seconds": round(time.perf_counter() - started, 2)}
