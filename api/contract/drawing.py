"""A drawing's strokes: the shape pydantic validates, and the rules JSON Schema cannot say.

pydantic checks the shape and that every coordinate is a finite number (about 40 us for
500 points, in Rust). `check_drawing` then applies, in a few C-speed passes, the rules
that depend on the settings or span values: stroke and point counts, coordinate bounds,
rows of equal length, one form for all strokes, two distinct points. `strokes_schema`
states the same rules in the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AllowInfNan, Field, StrictFloat, StrictInt, TypeAdapter, WithJsonSchema

from api.contract.limits import SIMPLIFIED_MAX
from api.errors import InvalidRequest
from core.settings import Settings
from db.models import InputFormat

# Where a request model holds strokes; the document puts a $ref to `Strokes` in its place.
STROKES_MARK = {"x-strokes": True}

# Finite: NaN and Infinity are refused (JSON has neither; Python's parser allows them).
# (AllowInfNan on the float alone: a Field() around the union makes it three times slower.)
Coordinate = StrictInt | Annotated[StrictFloat, AllowInfNan(False)]
Row = Annotated[list[Coordinate], Field(min_length=1)]
Stroke = Annotated[list[Row], Field(min_length=2, max_length=3)]
StrokesShape = Annotated[list[Stroke], Field(min_length=1)]
# In a request model: validated as StrokesShape, documented as the settings-aware schema.
Strokes = Annotated[StrokesShape, WithJsonSchema(STROKES_MARK)]


@dataclass(frozen=True)
class DrawingCheck:
    input_format: InputFormat
    strokes: int
    points: int


def check_drawing(drawing: list[list[list[float]]], settings: Settings) -> DrawingCheck:
    """Rules beyond the shape, for strokes pydantic has already validated as StrokesShape."""
    if len(drawing) > settings.max_strokes:
        raise InvalidRequest(
            f"drawing has {len(drawing)} strokes; at most {settings.max_strokes} are allowed",
            {"field": "drawing", "limit": settings.max_strokes},
        )
    arity = len(drawing[0])
    limit = settings.max_coordinate
    points = 0
    min_x = min_y = max_xy = 0.0
    first = (drawing[0][0][0], drawing[0][1][0])
    two_points = False
    for i, stroke in enumerate(drawing):
        where = {"field": f"drawing[{i}]"}
        if len(stroke) != arity:
            raise InvalidRequest(
                "all strokes must have the same form (with or without times)", where
            )
        length = len(stroke[0])
        if any(len(row) != length for row in stroke):
            raise InvalidRequest("a stroke's rows must be of equal length", where)
        points += length
        if points > settings.max_points:
            raise InvalidRequest(
                f"drawing has more than {settings.max_points} points",
                {"field": "drawing", "limit": settings.max_points},
            )
        # One min and one max a row (C loops): the bounds, and the simplified-or-raw test.
        lows, highs = [min(row) for row in stroke], [max(row) for row in stroke]
        if min(lows) < -limit or max(highs) > limit:
            raise InvalidRequest(f"coordinates must be within ±{limit:g}", where)
        if i == 0:
            min_x, min_y, max_xy = lows[0], lows[1], max(highs[0], highs[1])
        else:
            min_x, min_y = min(min_x, lows[0]), min(min_y, lows[1])
            max_xy = max(max_xy, highs[0], highs[1])
        if not two_points:
            two_points = any(point != first for point in zip(stroke[0], stroke[1], strict=True))
    if not two_points:
        raise InvalidRequest("drawing needs at least two distinct points", {"field": "drawing"})
    # Simplified drawings are aligned to 0 and fit in 0..255; anything else is screen pixels.
    raw = arity == 3 or min_x != 0 or min_y != 0 or max_xy > SIMPLIFIED_MAX
    return DrawingCheck(InputFormat.raw if raw else InputFormat.simplified, len(drawing), points)


def strokes_schema(settings: Settings) -> dict[str, Any]:
    """The document's `Strokes`: the validated shape plus the limits of `check_drawing`."""
    schema = TypeAdapter(StrokesShape).json_schema()
    schema["maxItems"] = settings.max_strokes
    number = schema["items"]["items"]["items"]
    number.clear()
    number.update(
        {"type": "number", "minimum": -settings.max_coordinate, "maximum": settings.max_coordinate}
    )
    schema["description"] = (
        "Strokes in Quick, Draw! form: [[x...], [y...]] (simplified: aligned to 0, within "
        f"0..{SIMPLIFIED_MAX}) or [[x...], [y...], [t...]] (raw screen pixels, times in ms). "
        "All strokes have the same form; a stroke's rows have equal length; at most "
        f"{settings.max_points} points in all; at least two distinct (x, y) points."
    )
    return schema
