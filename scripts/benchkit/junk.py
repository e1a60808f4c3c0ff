"""Synthetic junk for the relabel benchmark (scripts/junk_bench.py): scribbles and near-empty
doodles as a player might send them, in the dataset's simplified format (0..255).

Four kinds of scribble, dealt in turn: a polyline through random points (one to three
strokes), a zig-zag shading the box, a random-walk tangle, and a scatter of short dashes.
Near-empty: a dot. (A tick a few pixels long is scaled to a full-size line by the dataset's
recipe before any check sees it; ml.quality says why.)
"""

from __future__ import annotations

import numpy as np

Strokes = list[list[list[int]]]
SCRIBBLE_KINDS = ("polyline", "zigzag", "tangle", "dashes")


def _polyline(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.uniform(0, 255, (int(rng.integers(4, 30)), 2)) for _ in range(rng.integers(1, 4))]


def _zigzag(rng: np.random.Generator) -> list[np.ndarray]:
    k = int(rng.integers(6, 25))
    xs = np.linspace(0, 255, k) + rng.normal(0, 10, k)
    ys = np.where(np.arange(k) % 2, 0, 255) + rng.normal(0, 15, k)
    return [np.stack([xs, ys], 1)]


def _tangle(rng: np.random.Generator) -> list[np.ndarray]:
    return [np.cumsum(rng.normal(0, 30, (int(rng.integers(20, 80)), 2)), 0)]


def _dashes(rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(rng.integers(3, 12)):
        start = rng.uniform(0, 255, 2)
        out.append(np.stack([start, start + rng.normal(0, 40, 2)]))
    return out


_MAKERS = {"polyline": _polyline, "zigzag": _zigzag, "tangle": _tangle, "dashes": _dashes}


def _simplified(strokes: list[np.ndarray]) -> Strokes:
    """Aligned to the top-left and scaled so the longest side is 255, as the dataset is."""
    points = np.concatenate(strokes)
    low = points.min(0)
    span = float((points.max(0) - low).max()) or 1.0
    out: Strokes = []
    for stroke in strokes:
        scaled = np.round((stroke - low) / span * 255).astype(int)
        out.append([scaled[:, 0].tolist(), scaled[:, 1].tolist()])
    return out


def scribbles(n: int, seed: int) -> list[tuple[str, Strokes]]:
    """n (kind, strokes), the kinds dealt in turn."""
    rng = np.random.default_rng(seed)
    kinds = [SCRIBBLE_KINDS[i % len(SCRIBBLE_KINDS)] for i in range(n)]
    return [(kind, _simplified(_MAKERS[kind](rng))) for kind in kinds]


def dots(n: int, seed: int) -> list[Strokes]:
    """n near-empty doodles: a single dot somewhere on the canvas."""
    rng = np.random.default_rng(seed)
    return [[[[int(x)], [int(y)]]] for x, y in rng.integers(0, 256, (n, 2))]
