"""Stroke formats of Quick, Draw! and the dataset's raw -> simplified recipe.

A drawing is a list of strokes. A *simplified* stroke is ``[[x...], [y...]]`` with integer
coordinates in 0..255, the drawing aligned to the top-left and its longest side scaled to 255.
A *raw* stroke is what the game recorded: screen pixels (floats allowed), optionally with a third
row of timings ``[t_ms...]``.

Numpy only (no torch): the API validates and converts strokes without loading the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Strokes = list[list[list[float]]]

# The dataset's own recipe (quickdraw-dataset README, "Preprocessing").
SIDE = 255
RESAMPLE_SPACING = 1.0
RDP_EPSILON = 2.0

# Simplified drawings are aligned to (0, 0), but RDP may drop an extreme point: over the 8,600
# sample drawings min(min x, min y) is at most 2 (one axis may sit at up to 46) and the longest
# side goes down to 241.
_ALIGN_SLACK = 2
_MIN_LONGEST_SIDE = 235


def _rows(stroke: Any) -> int:
    return len(stroke) if isinstance(stroke, Sequence) else 0


def _all_values(drawing: Sequence[Sequence[Sequence[float]]], row: int) -> list[float]:
    return [v for stroke in drawing if len(stroke) > row for v in stroke[row]]


def is_raw(drawing: Sequence[Sequence[Sequence[float]]]) -> bool:
    """True unless the drawing already looks like the dataset's simplified format.

    Simplified means: every stroke has exactly two rows (no timings), every value is an integer
    in 0..255, the drawing touches the top or the left edge (min(min x, min y) <= 2; RDP may
    drop an extreme point) and its longest side is 235..255 (or 0 for a single dot). Anything
    else (timings, fractional or screen coordinates, a drawing floating in the middle of the
    canvas or drawn small) is raw and goes through `simplify`. An empty drawing is not raw.
    """
    if any(_rows(stroke) != 2 for stroke in drawing):
        return True
    xs, ys = _all_values(drawing, 0), _all_values(drawing, 1)
    if not xs or not ys:
        return False
    values = xs + ys
    if any(not float(v).is_integer() or v < 0 or v > SIDE for v in values):
        return True
    if min(min(xs), min(ys)) > _ALIGN_SLACK:
        return True
    longest = max(max(xs) - min(xs), max(ys) - min(ys))
    return not (longest == 0 or longest >= _MIN_LONGEST_SIDE)


def _resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points along the polyline at most `spacing` apart (keeping the original vertices)."""
    if len(points) < 2:
        return points
    seg = np.diff(points, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    steps = np.maximum(np.ceil(lengths / spacing).astype(int), 1)
    # For each segment, fractions 0, 1/n, ..., (n-1)/n; then the final vertex.
    seg_index = np.repeat(np.arange(len(seg)), steps)
    starts = np.cumsum(steps) - steps
    frac = (np.arange(steps.sum()) - np.repeat(starts, steps)) / np.repeat(steps, steps)
    out = points[seg_index] + seg[seg_index] * frac[:, None]
    return np.vstack([out, points[-1:]])


def _rdp(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer–Douglas–Peucker, iterative (strokes can have thousands of resampled points)."""
    n = len(points)
    if n < 3:
        return points
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        start, end = points[first], points[last]
        inner = points[first + 1 : last]
        dx, dy = end - start
        norm = np.hypot(dx, dy)
        if norm == 0:
            dists = np.hypot(inner[:, 0] - start[0], inner[:, 1] - start[1])
        else:
            dists = np.abs(dx * (inner[:, 1] - start[1]) - dy * (inner[:, 0] - start[0])) / norm
        i = int(np.argmax(dists))
        if dists[i] > epsilon:
            mid = first + 1 + i
            keep[mid] = True
            stack.extend([(first, mid), (mid, last)])
    return points[keep]


def _points(stroke: Any, index: int) -> np.ndarray:
    """(n, 2) float array of one stroke; ValueError on a malformed stroke."""
    if _rows(stroke) not in (2, 3) or len(stroke[0]) != len(stroke[1]):
        raise ValueError(f"stroke {index}: expected [[x...], [y...]] (+ [t...]) of equal length")
    try:
        return np.column_stack([np.asarray(stroke[0], float), np.asarray(stroke[1], float)])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"stroke {index}: coordinates must be numbers") from exc


def simplify(drawing: Sequence[Sequence[Sequence[float]]]) -> list[list[list[int]]]:
    """Raw -> simplified, the dataset's recipe.

    Align to (0, 0), scale uniformly so the longest side is 255, resample every stroke at 1 px,
    RDP with epsilon 2.0, round to ints, drop timings. A single-point stroke becomes two equal
    points (as in the dataset); a zero-extent drawing is only aligned (no division by zero).
    """
    strokes = [_points(stroke, i) for i, stroke in enumerate(drawing)]
    strokes = [pts for pts in strokes if len(pts)]
    if not strokes:
        return []
    every = np.vstack(strokes)
    low = every.min(axis=0)
    longest = float((every.max(axis=0) - low).max())
    scale = SIDE / longest if longest > 0 else 1.0
    out: list[list[list[int]]] = []
    for pts in strokes:
        pts = (pts - low) * scale
        pts = _rdp(_resample(pts, RESAMPLE_SPACING), RDP_EPSILON)
        if len(pts) == 1:
            pts = np.vstack([pts, pts])
        ints = np.rint(pts).astype(int)
        out.append([ints[:, 0].tolist(), ints[:, 1].tolist()])
    return out


def to_simplified(drawing: Sequence[Sequence[Sequence[float]]]) -> list[list[list[int]]]:
    """The simplified form of any drawing: `simplify` if raw, else the same ints (2 rows)."""
    if is_raw(drawing):
        return simplify(drawing)
    return [[[int(v) for v in stroke[0]], [int(v) for v in stroke[1]]] for stroke in drawing]
