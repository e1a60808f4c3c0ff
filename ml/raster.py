"""Simplified strokes -> Google's 28x28 Quick, Draw! bitmaps; doodle PNGs -> the same.

The model was trained on Google's bitmaps, so the layout must match theirs: the widely used
cairo recipe draws the 256x256 drawing with round-capped, round-joined lines 16 units wide,
inside a padding of 16 + 8 units, on a canvas of 256 + 48 units scaled to 28 px (line about
1.47 px, margin about 2.2 px).

`rasterize` computes the anti-aliased lines directly with numpy instead of drawing them big and
shrinking them: a pixel's ink is how far its centre lies inside the line, clip(half width + 0.5 -
distance to the nearest segment, 0, 1) (the edge ramp of a 1 px box filter). That is closer to
Google's bitmaps than the 8x-supersampled Pillow drawing it replaced (mean absolute difference
1.91/255 against 2.71 on the 125 pairs in the shared data) and about 3x faster a drawing, 10x in
a batch (scripts/bench_raster.py). The layout is `core.drawings`' (which draws PNGs for people).
numpy + Pillow only (no torch).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.drawings import CANVAS, LINE_WIDTH, SOURCE_SIDE
from core.png import PngLimits, check_png
from core.settings import MAX_PNG_SIDE

# Drawings per vectorised pass of rasterize_batch: 32 to 128 measured fastest (the temporary
# arrays, ~1 MB, stay in cache); 512 is twice as slow a drawing.
_BATCH = 64

_INK_THRESHOLD = 0.1  # fraction of full contrast that counts as ink when finding the box

Drawing = Sequence[Sequence[Sequence[float]]]


def _segments(drawings: Sequence[Drawing], size: int) -> tuple[np.ndarray, ...]:
    """(owner, ax, ay, bx, by): every stroke segment of the drawings, in output pixels.

    Each drawing's box is centred (and shrunk if wider than 255 units); a one-point stroke is a
    zero-length segment, which inks a dot. Coordinates go through numpy in one go, not point by
    point in Python.
    """
    unit = size / CANVAS  # output px per source unit
    centre = CANVAS / 2 * unit
    xs: list[float] = []
    ys: list[float] = []
    counts: list[int] = []
    scales: list[float] = []
    shifts_x: list[float] = []
    shifts_y: list[float] = []
    for drawing in drawings:
        strokes = [s for s in drawing if len(s) >= 2 and len(s[0]) and len(s[0]) == len(s[1])]
        start = len(xs)
        scale = shift_x = shift_y = 0.0
        if strokes:
            x0, x1 = min(min(s[0]) for s in strokes), max(max(s[0]) for s in strokes)
            y0, y1 = min(min(s[1]) for s in strokes), max(max(s[1]) for s in strokes)
            # Simplified drawings span 0..255 already; shrink anything larger.
            scale = min(1.0, (SOURCE_SIDE - 1) / max(x1 - x0, y1 - y0, 1e-9)) * unit
            shift_x = centre - (x0 + x1) / 2 * scale
            shift_y = centre - (y0 + y1) / 2 * scale
            for s in strokes:
                xs.extend(s[0])
                ys.extend(s[1])
                if len(s[0]) == 1:
                    xs.extend(s[0])
                    ys.extend(s[1])
                # A NaN ends each stroke: no segment joins two strokes (or two drawings).
                xs.append(math.nan)
                ys.append(math.nan)
        counts.append(len(xs) - start)
        scales.append(scale)
        shifts_x.append(shift_x)
        shifts_y.append(shift_y)
    point_scales = np.repeat(scales, counts)
    x = np.array(xs, dtype=np.float64) * point_scales + np.repeat(shifts_x, counts)
    y = np.array(ys, dtype=np.float64) * point_scales + np.repeat(shifts_y, counts)
    owner = np.repeat(np.arange(len(counts)), counts)
    i = np.flatnonzero(~np.isnan(x[:-1] + x[1:]))
    return owner[i], x[i], y[i], x[i + 1], y[i + 1]


def _coverage(drawings: Sequence[Drawing], size: int) -> np.ndarray:
    """(N, size, size) float ink coverage 0..1 of the drawings, laid out like Google's bitmaps."""
    owner, ax, ay, bx, by = _segments(drawings, size)
    # A pixel centre this far from a line's axis gets no ink (half a line plus half a pixel).
    reach = LINE_WIDTH / 2 * size / CANVAS + 0.5
    # Cut the segments into pieces short enough that a fixed w x w window of pixels holds all
    # that a piece can ink, so every piece is computed at once. w = 4 * reach measured fastest
    # (shorter pieces make more windows, longer ones mostly empty windows).
    w = math.ceil(4 * reach)
    piece = w - 2 * reach
    dx, dy = bx - ax, by - ay
    parts = np.maximum(np.ceil(np.sqrt(dx * dx + dy * dy) / piece), 1).astype(np.int64)
    seg = np.repeat(np.arange(len(parts)), parts)
    k = parts[seg]
    j = np.arange(len(seg)) - (np.cumsum(parts) - parts)[seg]  # piece's rank in its segment
    ux, uy = dx[seg] / k, dy[seg] / k  # each piece's vector
    x0, y0 = ax[seg] + j * ux, ay[seg] + j * uy  # and start
    # Each window starts at the first pixel whose centre can lie within reach of its piece.
    left = np.floor(np.minimum(x0, x0 + ux) - reach + 0.5).astype(np.int64)
    top = np.floor(np.minimum(y0, y0 + uy) - reach + 0.5).astype(np.int64)
    # Window pixel centres relative to the piece's start: (P, 1, w) and (P, w, 1). Window-local
    # coordinates keep a drawing's pixels the same whether it is rasterised alone or in a batch.
    centres = np.arange(w) + 0.5
    px = (centres - (x0 - left)[:, None])[:, None, :]
    py = (centres - (y0 - top)[:, None])[:, :, None]
    length2 = ux * ux + uy * uy
    length2[length2 == 0] = 1.0  # a dot: the distance to its point
    ux, uy = ux[:, None, None], uy[:, None, None]
    # Nearest point of the piece, then the distance to it. In place where it can be: the
    # (P, w, w) arrays are the bulk of the work (~25 % faster a batch than fresh arrays).
    t = px * (ux / length2[:, None, None]) + py * (uy / length2[:, None, None])
    t.clip(0.0, 1.0, out=t)
    ex, ey = px - t * ux, py - t * uy
    ex *= ex
    ey *= ey
    ex += ey
    ink = np.sqrt(ex, out=ex)
    np.subtract(reach, ink, out=ink)
    ink.clip(0.0, 1.0, out=ink)
    # Pieces overlap (joints, crossings): a pixel keeps its largest ink, as the union of the
    # round-capped lines would. Padding lets windows poke out of the image.
    pad = w
    side = size + 2 * pad
    canvas = np.zeros((len(drawings), side, side))
    corner = owner[seg] * side * side + (top + pad) * side + left + pad
    index = corner[:, None, None] + np.arange(w)[:, None] * side + np.arange(w)
    np.maximum.at(canvas.reshape(-1), index.reshape(-1), ink.reshape(-1))
    return canvas[:, pad:-pad, pad:-pad]


def _bitmaps(coverage: np.ndarray) -> np.ndarray:
    return np.rint(coverage * 255).astype(np.uint8)


def rasterize(drawing_simplified: Drawing, size: int = 28) -> np.ndarray:
    """uint8 (size, size), white ink (255) on black (0), laid out like Google's bitmaps.

    Expects simplified strokes (see `ml.strokes.to_simplified`); an empty drawing is all black.
    """
    return _bitmaps(_coverage([drawing_simplified], size))[0]


def rasterize_batch(drawings: Iterable[Drawing], size: int = 28) -> np.ndarray:
    """(N, size, size) uint8 bitmaps of simplified drawings, each as `rasterize` makes it.

    Vectorised over up to `_BATCH` drawings at a time: ~3x cheaper a drawing than `rasterize`.
    """
    drawings = iter(drawings)
    chunks = []
    while chunk := list(itertools.islice(drawings, _BATCH)):
        chunks.append(_bitmaps(_coverage(chunk, size)))
    if not chunks:
        return np.zeros((0, size, size), dtype=np.uint8)
    return np.concatenate(chunks)


# Images longer than this a side are box-reduced right after decoding, to about
# _REDUCED_SIDE, before anything else is made of them: the float copies of a 2048 px canvas
# took 140 MB and 120 ms (scripts/png_cost.py); the ink box still spans hundreds of pixels
# for 28. Smaller images are untouched, so what they give is exactly as before.
_REDUCE_ABOVE = 1024
_REDUCED_SIDE = 512


def _open_png(data: bytes, limits: PngLimits) -> Image.Image:
    """The decoded image, reduced if large; ValueError (a plain reason) for what is not a
    PNG worth decoding. The header is checked before PIL sees the data (rows queued before
    the API checked it too, or under other limits)."""
    header = check_png(data, limits)
    if max(header.width, header.height) > MAX_PNG_SIDE:
        raise ValueError(
            f"image too large: {header.width}x{header.height} (max {MAX_PNG_SIDE} a side)"
        )
    try:
        image: Image.Image = Image.open(io.BytesIO(data), formats=["PNG"])
        image.load()
        if image.mode.startswith("I"):
            # 16-bit grey (when the limits allow it): PIL's own conversions clip at 255.
            samples = np.asarray(image, dtype=np.uint32) >> (header.bit_depth - 8)
            image = Image.fromarray(samples.astype(np.uint8), "L")
        if max(image.size) > _REDUCE_ABOVE:
            # reduce() averages samples: palette indices and 1-bit need converting first.
            mode = (
                "RGBA"
                if image.mode in ("P", "PA", "LA", "1") or "transparency" in image.info
                else image.mode
            )
            if image.mode != mode:
                image = image.convert(mode)
            image = image.reduce(max(image.size) // _REDUCED_SIDE)
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as exc:
        # PIL's messages quote Python objects; the reason says what is wrong instead.
        raise ValueError("corrupt PNG: its image data does not decode") from exc
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


def bitmap_from_png(data: bytes, limits: PngLimits | None = None) -> np.ndarray:
    """A doodle PNG -> (28, 28) uint8 white ink on black, laid out like `rasterize`.

    Finds the ink's bounding box and places it as `rasterize` places a drawing's inked box
    (centred, longest side (255 + line width) / canvas of the output). Raises ValueError
    with a plain reason on non-PNG, truncated or corrupt data, images over `limits` (the
    defaults of core.png if None) or 4096 px a side, or images with no ink.
    """
    ink = _ink(_open_png(data, limits or PngLimits()))
    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    if not len(rows):
        raise ValueError("image has no ink")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    # The inked box of a full-size drawing covers (255 + line width) of the canvas' units.
    side = max(height, width) * CANVAS / (SOURCE_SIDE - 1 + LINE_WIDTH)
    side_px = max(round(side), height, width)
    square = np.zeros((side_px, side_px), dtype=np.float32)
    top, left = (side_px - height) // 2, (side_px - width) // 2
    square[top : top + height, left : left + width] = crop
    small = Image.fromarray(square * 255.0).resize((28, 28), Image.Resampling.BOX)
    return np.clip(np.rint(np.asarray(small)), 0, 255).astype(np.uint8)
