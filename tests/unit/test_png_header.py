"""core.png: a PNG's decoding cost and soundness read from its chunks, without inflating
anything, and refusals in plain words (issue 18: 4096x4096 16-bit RGBA, PIL's reprs)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from core.drawings import render_png
from core.png import (
    CorruptPng,
    NotPng,
    PngLimits,
    PngTooCostly,
    check_chunks,
    check_png,
    read_header,
)
from ml.raster import bitmap_from_png, rasterize
from tests.fixtures import pngs

STAR = [
    [
        [67, 37, 30, 44, 70, 105, 116, 184, 192, 194, 161, 190, 237, 230, 185, 155, 145, 110],
        [160, 220, 243, 240, 226, 200, 189, 251, 255, 249, 160, 145, 106, 103, 103, 95, 72, 9],
    ]
]
# What a Python repr looks like in a message: <_io.BytesIO object at 0x7f...>, b'...'.
REPR = re.compile(r"<[^>]*object at|0x[0-9a-f]{6,}|b'|b\"")


def _bad_crc(data: bytes) -> bytes:
    """The PNG with one byte of its image data changed (its IDAT checksum no longer holds)."""
    at = data.index(b"IDAT") + 10
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_the_costly_png_of_issue_18_is_refused_on_its_header() -> None:
    data = pngs.costly_png()
    assert len(data) < 200_000  # small on the wire: the bytes limit never saw it
    header = read_header(data)
    assert (header.width, header.height, header.bit_depth) == (4096, 4096, 16)
    assert header.decoded_bytes == 4096 * 4096 * 8  # 128 MB of samples
    with pytest.raises(PngTooCostly) as refused:
        check_png(data, PngLimits())
    assert str(refused.value).startswith("image too large: 4096x4096 pixels")
    assert "DOODLE_PNG_MAX_PIXELS=4,194,304" in str(refused.value)
    assert refused.value.details["max_pixels"] == 2048 * 2048


def test_bit_depth_over_the_limit_is_refused_and_allowed_when_raised() -> None:
    deep = pngs.ring_png(64, 16, pngs.RGBA)
    with pytest.raises(PngTooCostly, match="16 bits a sample, limit DOODLE_PNG_MAX_BIT_DEPTH=8"):
        check_png(deep, PngLimits())
    assert check_png(deep, PngLimits(max_bit_depth=16)).bit_depth == 16


def test_a_canvas_within_the_limits_passes() -> None:
    header = check_png(pngs.ring_png(2048), PngLimits())
    assert header.pixels == 2048 * 2048 and not header.interlaced
    assert check_png(pngs.interlaced_png(64), PngLimits()).interlaced


@pytest.mark.parametrize(
    ("make", "error", "reason"),
    [
        (lambda png: b"GIF89a" + png[6:], NotPng, "not a PNG image"),
        (lambda png: png[:20], CorruptPng, "truncated PNG"),
        (lambda png: png[:-30], CorruptPng, "truncated PNG"),
        (lambda png: png[:-12], CorruptPng, "truncated PNG: it ends before its last chunk"),
        (_bad_crc, CorruptPng, "the IDAT chunk's checksum does not match"),
        (lambda png: png[:8] + pngs.ihdr(10, 10, 3, 6) + png[33:], CorruptPng, "impossible"),
        (lambda png: png[:33] + pngs.chunk(b"IEND", b""), CorruptPng, "no image data"),
    ],
)
def test_broken_pngs_are_named_in_plain_words(make, error, reason) -> None:
    data = make(render_png(STAR))
    with pytest.raises(error, match=reason) as refused:
        check_png(data, PngLimits())
    assert not REPR.search(str(refused.value))


def test_the_chunk_walk_accepts_what_pil_writes() -> None:
    for mode in ("L", "RGB", "RGBA", "P", "1"):
        out = pngs_io(Image.new(mode, (40, 30)))
        check_chunks(out)


def pngs_io(image: Image.Image) -> bytes:
    import io

    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_the_worker_refuses_the_costly_png_before_pil_opens_it(monkeypatch) -> None:
    def never(*_args, **_kw):
        raise AssertionError("PIL was asked to open a PNG over the limits")

    monkeypatch.setattr(Image, "open", never)
    with pytest.raises(ValueError, match="image too large: 4096x4096") as refused:
        bitmap_from_png(pngs.costly_png())
    assert not REPR.search(str(refused.value))


def test_a_large_canvas_is_reduced_and_still_matches_the_rasteriser() -> None:
    expected = rasterize(STAR).astype(int)
    large = bitmap_from_png(render_png(STAR, size=2048)).astype(int)
    small = bitmap_from_png(render_png(STAR, size=256)).astype(int)
    assert np.abs(large - expected).mean() < 8
    assert np.abs(large - small).mean() < 4


def test_sixteen_bit_images_decode_when_an_operator_allows_them() -> None:
    limits = PngLimits(max_bit_depth=16)
    for colour in (pngs.GRAY, pngs.RGBA):
        ring = bitmap_from_png(pngs.ring_png(300, 16, colour), limits)
        same = bitmap_from_png(pngs.ring_png(300, 8, colour))
        assert np.abs(ring.astype(int) - same.astype(int)).max() <= 1


def test_an_undecodable_image_body_gets_a_plain_reason() -> None:
    data = render_png(STAR)
    start = data.index(b"IDAT") - 4
    length = int.from_bytes(data[start : start + 4], "big")
    # Sound chunks whose compressed data is not zlib: only decoding finds out.
    garbage = pngs.chunk(b"IDAT", b"\x00" * length)
    broken = data[:start] + garbage + data[start + 12 + length :]
    check_chunks(broken)
    with pytest.raises(ValueError, match="corrupt PNG: its image data does not decode") as refused:
        bitmap_from_png(broken)
    assert not REPR.search(str(refused.value))
