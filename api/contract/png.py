"""A PNG body: its size is read from the header and bounded before PIL decodes anything.

A 20000x20000 image compresses to under 100 KB; PIL would refuse it only with a
DecompressionBombError, or decode it into gigabytes below its own threshold.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, UnidentifiedImageError

from api.contract.limits import MAX_PNG_PIXELS
from api.errors import InvalidRequest
from core.png import PngError, check_chunks
from core.settings import MAX_PNG_SIDE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The first chunk of every PNG: length 13, type IHDR, then width and height (big-endian).
_IHDR = struct.Struct(">I4sII")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk; InvalidRequest if the header is not a PNG's."""
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidRequest("body is not a PNG image", {"content_type": "image/png"})
    header = data[len(PNG_SIGNATURE) : len(PNG_SIGNATURE) + _IHDR.size]
    if len(header) < _IHDR.size:
        raise InvalidRequest("PNG image is corrupt", {"reason": "truncated header"})
    length, kind, width, height = _IHDR.unpack(header)
    if length != 13 or kind != b"IHDR":
        raise InvalidRequest("PNG image is corrupt", {"reason": "no IHDR chunk first"})
    return width, height


def validate_png(data: bytes) -> None:
    width, height = png_size(data)
    if width > MAX_PNG_SIDE or height > MAX_PNG_SIDE or width * height > MAX_PNG_PIXELS:
        raise InvalidRequest(
            f"image is {width}x{height}; at most {MAX_PNG_SIDE}x{MAX_PNG_SIDE} is allowed",
            {"width": width, "height": height, "max_side": MAX_PNG_SIDE},
        )
    # Reasons in plain words: PIL's messages quote Python objects (<_io.BytesIO ...>).
    try:
        check_chunks(data)
    except PngError as exc:
        raise InvalidRequest("PNG image is corrupt", {"reason": exc.message}) from None
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest("PNG image is corrupt", {"reason": "it does not decode"}) from exc
    except Image.DecompressionBombError as exc:  # a header that lied to png_size
        raise InvalidRequest("PNG image is too large", {"reason": "too many pixels"}) from exc
