"""What a PNG will cost to decode, read from its chunks before anything is decompressed.

A PNG's bytes say little about its decoded size: a 150 KB mostly blank 4096x4096 16-bit
RGBA image inflates to 128 MB of samples, cost a worker 1.3 s of CPU and 575 MB of memory
(scripts/png_cost.py) and held up every doodle of its batch. The header (IHDR) states the
width, height and bit depth, so the API and the worker both refuse such an image unread.

The chunk walk (`check_png`) also tells a truncated or corrupt file from a non-PNG in plain
words: PIL's own errors quote Python objects (`<_io.BytesIO object at 0x...>`), which must
never reach an answer. Pure Python (struct, zlib.crc32 over the chunks, no inflating).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every chunk: length (4 bytes, big-endian), type (4), data (length), CRC of type + data (4).
_CHUNK_HEAD = struct.Struct(">I4s")
_CRC = struct.Struct(">I")
# IHDR's data: width, height, bit depth, colour type, compression, filter, interlace.
_IHDR = struct.Struct(">IIBBBBB")
# The PNG specification's allowed bit depths for each colour type, and samples per pixel.
_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# A chunk longer than this is malformed (the specification's limit, 2^31 - 1).
_MAX_CHUNK = 2**31 - 1

# Defaults (core.settings declares the variables): a phone or tablet canvas fits 2048x2048;
# 8 bits a sample is what every canvas export writes.
DEFAULT_MAX_PIXELS = 2048 * 2048
DEFAULT_MAX_BIT_DEPTH = 8
MAX_PIXELS_VARIABLE = "DOODLE_PNG_MAX_PIXELS"
MAX_BIT_DEPTH_VARIABLE = "DOODLE_PNG_MAX_BIT_DEPTH"


class PngError(ValueError):
    """A PNG refused: the message says what is wrong in plain words (never a repr);
    `details` are what an API answer may carry."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotPng(PngError):
    pass


class CorruptPng(PngError):
    """Truncated, or chunks that do not add up."""


class PngTooCostly(PngError):
    """Well formed, but over a decoding limit (pixels or bit depth)."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """Bytes of samples the image inflates to (what decoding it costs, roughly)."""
        return self.pixels * _CHANNELS[self.colour_type] * self.bit_depth // 8


@dataclass(frozen=True)
class PngLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bit_depth: int = DEFAULT_MAX_BIT_DEPTH

    @classmethod
    def of(cls, settings: Any) -> PngLimits:
        """The limits a `core.settings.Settings` sets."""
        return cls(settings.png_max_pixels, settings.png_max_bit_depth)


def read_header(data: bytes) -> PngHeader:
    """The IHDR of a PNG: NotPng without the signature, CorruptPng if IHDR is cut short,
    damaged or states values the format does not allow."""
    if not data.startswith(SIGNATURE):
        raise NotPng("not a PNG image (no PNG signature)")
    start = len(SIGNATURE)
    head = data[start : start + _CHUNK_HEAD.size]
    if len(head) < _CHUNK_HEAD.size:
        raise CorruptPng("truncated PNG: the header ends early")
    length, kind = _CHUNK_HEAD.unpack(head)
    if kind != b"IHDR" or length != _IHDR.size:
        raise CorruptPng("corrupt PNG: the first chunk is not a header (IHDR)")
    body_start = start + _CHUNK_HEAD.size
    body = data[body_start : body_start + length]
    crc = data[body_start + length : body_start + length + _CRC.size]
    if len(crc) < _CRC.size:
        raise CorruptPng("truncated PNG: the header ends early")
    if _CRC.unpack(crc)[0] != zlib.crc32(kind + body):
        raise CorruptPng("corrupt PNG: the header's checksum does not match")
    width, height, depth, colour, compression, filtering, interlace = _IHDR.unpack(body)
    if not (width and height) or depth not in _BIT_DEPTHS.get(colour, ()):
        raise CorruptPng("corrupt PNG: the header states an impossible image")
    if compression or filtering or interlace > 1:
        raise CorruptPng("corrupt PNG: unknown compression, filter or interlace method")
    return PngHeader(width, height, depth, colour, interlace == 1)


def check_limits(header: PngHeader, limits: PngLimits) -> None:
    """PngTooCostly if decoding the image would cost more than `limits` allow."""
    if header.pixels > limits.max_pixels:
        raise PngTooCostly(
            f"image too large: {header.width}x{header.height} pixels "
            f"({header.pixels:,}), limit {MAX_PIXELS_VARIABLE}={limits.max_pixels:,}",
            {
                "width": header.width,
                "height": header.height,
                "pixels": header.pixels,
                "max_pixels": limits.max_pixels,
            },
        )
    if header.bit_depth > limits.max_bit_depth:
        raise PngTooCostly(
            f"image too deep: {header.bit_depth} bits a sample, "
            f"limit {MAX_BIT_DEPTH_VARIABLE}={limits.max_bit_depth}",
            {"bit_depth": header.bit_depth, "max_bit_depth": limits.max_bit_depth},
        )


def check_chunks(data: bytes) -> None:
    """CorruptPng unless the chunks after IHDR are whole, their checksums match, image
    data (IDAT) is there and IEND ends the image. Costs a CRC over the bytes, no inflating."""
    offset = len(SIGNATURE)
    seen_data = False
    while True:
        head = data[offset : offset + _CHUNK_HEAD.size]
        if len(head) < _CHUNK_HEAD.size:
            raise CorruptPng("truncated PNG: it ends before its last chunk (IEND)")
        length, kind = _CHUNK_HEAD.unpack(head)
        if length > _MAX_CHUNK:
            raise CorruptPng("corrupt PNG: a chunk states an impossible length")
        body_start = offset + _CHUNK_HEAD.size
        end = body_start + length + _CRC.size
        if end > len(data):
            raise CorruptPng("truncated PNG: a chunk is cut short")
        (crc,) = _CRC.unpack_from(data, body_start + length)
        # crc32 of type then data, without copying the data out of the buffer.
        if crc != zlib.crc32(memoryview(data)[body_start : body_start + length], zlib.crc32(kind)):
            raise CorruptPng(f"corrupt PNG: the {_name(kind)} chunk's checksum does not match")
        seen_data = seen_data or kind == b"IDAT"
        offset = end
        if kind == b"IEND":
            break
    if not seen_data:
        raise CorruptPng("corrupt PNG: no image data (IDAT)")


def check_png(data: bytes, limits: PngLimits) -> PngHeader:
    """The header of a PNG worth decoding; PngError (with a plain reason) if it is not one:
    not a PNG, truncated or corrupt, or over `limits`. The limits are checked before the
    chunks, so a costly image is refused on its first 33 bytes."""
    header = read_header(data)
    check_limits(header, limits)
    check_chunks(data)
    return header


def _name(kind: bytes) -> str:
    """A chunk type fit to print: its four letters, or 'malformed'."""
    return kind.decode("ascii") if kind.isalpha() else "malformed"
