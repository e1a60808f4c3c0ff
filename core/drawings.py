"""Drawings for people: strokes -> a PNG, in the layout of Google's Quick, Draw! bitmaps.

The layout (what the model's 28x28 rasteriser in `ml.raster` also follows): the drawing's
box is centred on a canvas of 256 + 48 source units (a padding of 16 units a side besides
half a line width), lines 16 units wide with round caps and joints. Any strokes work,
simplified (0..255) or raw (screen pixels): larger drawings are shrunk to fit. Pillow only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

SOURCE_SIDE = 256.0  # the simplified drawings' coordinate space
LINE_WIDTH = 16.0  # in source units
PADDING = 16.0  # in source units, on each side, besides half a line width
CANVAS = SOURCE_SIDE + 2 * PADDING + LINE_WIDTH  # source units that map onto the image
_SUPERSAMPLE = 2  # Pillow's lines are not anti-aliased: draw larger, then average down

Drawing = Sequence[Sequence[Sequence[float]]]


def render_png(drawing: Drawing, size: int = 256) -> bytes:
    """PNG of the drawing, black ink on white, `size` px square."""
    side = size * _SUPERSAMPLE
    canvas = Image.new("L", (side, side), 255)
    strokes = [s for s in drawing if len(s) >= 2 and len(s[0]) and len(s[0]) == len(s[1])]
    if strokes:
        xs = [float(v) for s in strokes for v in s[0]]
        ys = [float(v) for s in strokes for v in s[1]]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        fit = min(1.0, (SOURCE_SIDE - 1) / max(x1 - x0, y1 - y0, 1e-9))
        unit = side / CANVAS  # image px per source unit
        scale = fit * unit
        dx = CANVAS / 2 * unit - (x0 + x1) / 2 * scale
        dy = CANVAS / 2 * unit - (y0 + y1) / 2 * scale
        radius = LINE_WIDTH * unit / 2
        pen = ImageDraw.Draw(canvas)
        for stroke in strokes:
            points = [
                (x * scale + dx, y * scale + dy) for x, y in zip(stroke[0], stroke[1], strict=True)
            ]
            if len(points) > 1:
                pen.line(points, fill=0, width=round(2 * radius), joint="curve")
            for x, y in (points[0], points[-1]):  # round caps
                pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    out = io.BytesIO()
    canvas.reduce(_SUPERSAMPLE).save(out, format="PNG")
    return out.getvalue()
