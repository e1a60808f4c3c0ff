"""Simplified strokes -> Google's 28x28 Quick, Draw! bitmaps (and PNGs for people).

The model was trained on Google's bitmaps, so the layout must match theirs: the widely used
cairo recipe draws the 256x256 drawing with round-capped lines 16 units wide, inside a padding
of 16 + 8 units, on a canvas of 256 + 48 units scaled to 28 px (line about 1.47 px, margin about
2.2 px). Pillow's lines are not anti-aliased, so we draw on a canvas `supersample` times larger
and box-average it down, which gives cairo-like coverage. numpy + Pillow only (no torch).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from core.settings import MAX_PNG_SIDE

SOURCE_SIDE = 256.0  # the simplified drawings' coordinate space
LINE_WIDTH = 16.0  # in source units
PADDING = 16.0  # in source units, on each side, besides half a line width
_TOTAL_PADDING = 2 * PADDING + LINE_WIDTH
_CANVAS = SOURCE_SIDE + _TOTAL_PADDING  # source units that map onto the output image
# Side of the supersampled canvas we aim for: 224 px (8x for 28) measured MAD ~2.7/255 against
# Google's bitmaps at ~0.3 ms a drawing; 16x improves MAD to ~1.5 but costs more.
_SUPERSAMPLED_SIDE = 224

_INK_THRESHOLD = 0.1  # fraction of full contrast that counts as ink when finding the box

Drawing = Sequence[Sequence[Sequence[float]]]


def _supersample(size: int) -> int:
    return max(2, math.ceil(_SUPERSAMPLED_SIDE / size))


def _render(drawing: Drawing, size: int) -> Image.Image:
    """White ink on black, mode L, `size` px square, the drawing's box centred."""
    factor = _supersample(size)
    side = size * factor
    canvas = Image.new("L", (side, side), 0)
    strokes = [s for s in drawing if len(s) >= 2 and len(s[0]) and len(s[0]) == len(s[1])]
    if not strokes:
        return canvas.reduce(factor)
    xs = [float(v) for s in strokes for v in s[0]]
    ys = [float(v) for s in strokes for v in s[1]]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    # Simplified drawings span 0..255 already; shrink anything larger so it stays on the canvas.
    fit = min(1.0, (SOURCE_SIDE - 1) / max(x1 - x0, y1 - y0, 1e-9))
    unit = side / _CANVAS  # output px per source unit
    scale = fit * unit
    centre = _CANVAS / 2 * unit
    dx = centre - (x0 + x1) / 2 * scale
    dy = centre - (y0 + y1) / 2 * scale
    width = LINE_WIDTH * unit
    radius = width / 2
    pen = ImageDraw.Draw(canvas)
    for stroke in strokes:
        points = [
            (x * scale + dx, y * scale + dy) for x, y in zip(stroke[0], stroke[1], strict=True)
        ]
        if len(points) > 1:
            pen.line(points, fill=255, width=round(width), joint="curve")
        # Round caps (Pillow's lines have square-cut ends).
        for x, y in (points[0], points[-1]):
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return canvas.reduce(factor)


def rasterize(drawing_simplified: Drawing, size: int = 28) -> np.ndarray:
    """uint8 (size, size), white ink (255) on black (0), laid out like Google's bitmaps.

    Expects simplified strokes (see `ml.strokes.to_simplified`); an empty drawing is all black.
    """
    return np.asarray(_render(drawing_simplified, size), dtype=np.uint8)


def rasterize_batch(drawings: Iterable[Drawing]) -> np.ndarray:
    """(N, 28, 28) uint8 bitmaps of simplified drawings."""
    bitmaps = [rasterize(d) for d in drawings]
    if not bitmaps:
        return np.zeros((0, 28, 28), dtype=np.uint8)
    return np.stack(bitmaps)


def render_png(drawing_simplified: Drawing, size: int = 256) -> bytes:
    """PNG of the drawing, black ink on white, same layout as `rasterize` (for people)."""
    image = Image.eval(_render(drawing_simplified, size), lambda v: 255 - v)
    out = io.BytesIO()
    # optimize=True costs ~5x the CPU for no smaller file on line drawings.
    image.save(out, format="PNG")
    return out.getvalue()


def _open_png(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError("not a decodable PNG image") from exc
    if image.format != "PNG":
        raise ValueError(f"expected a PNG image, got {image.format}")
    width, height = image.size
    if width > MAX_PNG_SIDE or height > MAX_PNG_SIDE:
        raise ValueError(f"image too large: {width}x{height} (max {MAX_PNG_SIDE} a side)")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError("PNG image is corrupt or truncated") from exc
    return image


def _ink(image: Image.Image) -> np.ndarray:
    """Ink coverage 0..1 (float32) of any doodle PNG, whatever its polarity or transparency."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3]
    if has_alpha and alpha.min() < 1.0:
        # Transparent background: whatever is painted is ink, whatever its colour.
        return alpha
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    # The border is mostly background; its median tells dark-on-light from light-on-dark.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    contrast = max(background, 1.0 - background)
    return np.clip(np.abs(gray - background) / contrast, 0.0, 1.0)


def bitmap_from_png(data: bytes) -> np.ndarray:
    """A doodle PNG -> (28, 28) uint8 white ink on black, laid out like `rasterize`.

    Finds the ink's bounding box and places it as `rasterize` places a drawing's inked box
    (centred, longest side (255 + line width) / canvas of the output). Raises ValueError on
    undecodable data, non-PNG images, images over 4096 px a side, or images with no ink.
    """
    ink = _ink(_open_png(data))
    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    if not len(rows):
        raise ValueError("image has no ink")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    # The inked box of a full-size drawing covers (255 + line width) of the canvas' units.
    side = max(height, width) * _CANVAS / (SOURCE_SIDE - 1 + LINE_WIDTH)
    side_px = max(round(side), height, width)
    square = np.zeros((side_px, side_px), dtype=np.float32)
    top, left = (side_px - height) // 2, (side_px - width) // 2
    square[top : top + height, left : left + width] = crop
    small = Image.fromarray(square * 255.0).resize((28, 28), Image.Resampling.BOX)
    return np.clip(np.rint(np.asarray(small)), 0, 255).astype(np.uint8)
