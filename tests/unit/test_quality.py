"""Near-empty and scribble detection on bitmaps (synthetic drawings through the rasteriser)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.quality import NEAR_EMPTY, SCRIBBLE, assess, coverage, ink_fraction
from ml.raster import rasterize

LIMITS = {"min_ink": 0.01, "max_ink": 0.6}


def _shading(passes: int, seed: int) -> list:
    """A zig-zag going `passes` times across the box, shading it (a scribble)."""
    rng = np.random.default_rng(seed)
    xs = [0 if i % 2 == 0 else 255 for i in range(passes + 1)]
    ys = [255 * i / passes for i in range(passes + 1)]
    points = np.clip(np.c_[xs, ys] + rng.normal(0, 10, (passes + 1, 2)), 0, 255).astype(int)
    return [[points[:, 0].tolist(), points[:, 1].tolist()]]


def test_ink_fraction_bounds() -> None:
    assert ink_fraction(np.zeros((28, 28), np.uint8)) == 0.0
    assert ink_fraction(np.full((28, 28), 255, np.uint8)) == 1.0
    assert coverage(np.full((28, 28), 127, np.uint8)) == 0.0
    assert coverage(np.full((28, 28), 128, np.uint8)) == 1.0


@pytest.mark.parametrize(
    "drawing",
    [
        [],  # nothing drawn
        [[[0], [0]]],  # a dot
        [[[0, 3], [0, 2]]],  # a tiny line, not scaled up
        [[[10, 12], [10, 10]], [[40], [40]]],  # two specks
    ],
)
def test_near_empty(drawing: list) -> None:
    assert assess(rasterize(drawing), **LIMITS) == NEAR_EMPTY


@pytest.mark.parametrize("seed", range(10))
def test_dense_scribble(seed: int) -> None:
    assert assess(rasterize(_shading(45, seed)), **LIMITS) == SCRIBBLE


def test_solid_box_is_a_scribble() -> None:
    box = [[[0, 255, 255, 0, 0], [0, 0, 255, 255, 0]]] + [
        [[0, 255], [y, y]] for y in range(0, 256, 8)
    ]
    assert ink_fraction(rasterize(box)) > 0.7
    assert assess(rasterize(box), **LIMITS) == SCRIBBLE


@pytest.mark.parametrize(
    "drawing",
    [
        [[[0, 255], [0, 0]]],  # a line (a word of the game)
        [[[0, 255, 255, 0, 0], [0, 0, 255, 255, 0]]],  # a square
        [[[0, 128, 255, 0], [255, 0, 255, 255]]],  # a triangle
    ],
)
def test_plain_drawings_pass(drawing: list) -> None:
    assert assess(rasterize(drawing), **LIMITS) is None


def test_rejects_bad_limits_and_shapes() -> None:
    with pytest.raises(ValueError):
        assess(np.zeros((28, 28), np.uint8), min_ink=0.5, max_ink=0.1)
    with pytest.raises(ValueError):
        ink_fraction(np.zeros((28,), np.uint8))
