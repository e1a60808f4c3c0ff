"""Doodles that are not drawings: near-empty (a dot) or a scribble (ink all over the box).

Works on the model's input, a uint8 (28, 28) bitmap white ink on black as `ml.raster` gives.
The ink fraction is the bitmap's mean intensity / 255: the share of the 28x28 canvas covered by
ink, anti-aliased edges counting in part. A drawing's box fills at most about 79 % of the canvas
(`ml.raster` keeps a margin), so a box shaded solid scores about 0.79.

Calibrated on the 8,600 real simplified drawings of ../shared/data (344 words x 25): their ink
fraction runs from 0.026 (a few rain drops) through a median of 0.16 to 0.586 (a brain); 99.9 %
are under 0.47. None is flagged at the defaults (min 0.01, max 0.6). A single dot scores about
0.002; a zig-zag shading the whole box scores over 0.6 once it has about 30 passes. Lighter
scribbles (20 passes, ~0.54) overlap the densest real drawings and cannot be told apart by ink.

Because the dataset's recipe scales every drawing's longest side to 255, a short line (or a
small scribble) drawn anywhere is blown up to full size before it gets here: on the bitmap it is
a deliberate line (the word "line" exists). Only dots and empty drawings are near-empty here;
tiny raw drawings must be judged on their raw extent, before simplification.
"""

from __future__ import annotations

import numpy as np

NEAR_EMPTY = "near_empty"
SCRIBBLE = "scribble"
_HALF_INK = 128


def _bitmap(bitmap: np.ndarray) -> np.ndarray:
    array = np.asarray(bitmap)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a 2-D bitmap, got shape {array.shape}")
    return array


def ink_fraction(bitmap: np.ndarray) -> float:
    """Mean ink 0..1 of a uint8 bitmap (white ink on black): 0 empty, 1 solid white."""
    return float(_bitmap(bitmap).astype(np.float64).mean() / 255.0)


def coverage(bitmap: np.ndarray) -> float:
    """Share 0..1 of the canvas' pixels that are at least half inked (for reports)."""
    return float((_bitmap(bitmap) >= _HALF_INK).mean())


def assess(bitmap: np.ndarray, *, min_ink: float, max_ink: float) -> str | None:
    """None for a normal doodle, "near_empty" under `min_ink`, "scribble" over `max_ink`."""
    if not 0.0 <= min_ink < max_ink <= 1.0:
        raise ValueError(f"need 0 <= min_ink < max_ink <= 1, got {min_ink}, {max_ink}")
    ink = ink_fraction(bitmap)
    if ink < min_ink:
        return NEAR_EMPTY
    if ink > max_ink:
        return SCRIBBLE
    return None
