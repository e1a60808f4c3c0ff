"""ml.raster: layout, degenerate drawings, PNG round trip and the PNG decoder's defences."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from core.drawings import render_png
from ml import raster
from ml.raster import bitmap_from_png, rasterize, rasterize_batch

SQUARE = [[[0, 255, 255, 0, 0], [0, 0, 255, 255, 0]]]
STAR = [
    [
        [67, 37, 30, 44, 70, 105, 116, 184, 192, 194, 161, 190, 237, 230, 185, 155, 145, 110],
        [160, 220, 243, 240, 226, 200, 189, 251, 255, 249, 160, 145, 106, 103, 103, 95, 72, 9],
    ],
    [
        [110, 102, 98, 96, 78, 76, 70, 0, 18, 35, 48, 60],
        [9, 0, 5, 35, 110, 104, 101, 91, 128, 154, 165, 166],
    ],
]


def _ink_box(bitmap: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(bitmap.max(axis=1) > 0)
    cols = np.flatnonzero(bitmap.max(axis=0) > 0)
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(out, format="PNG")
    return out.getvalue()


def test_shape_dtype_and_polarity() -> None:
    bitmap = rasterize(SQUARE)
    assert bitmap.shape == (28, 28) and bitmap.dtype == np.uint8
    # White ink (a line whose axis sits off pixel centres peaks just under 255), black inside.
    assert bitmap.max() >= 250 and bitmap[14, 14] == 0


def test_other_sizes() -> None:
    assert rasterize(SQUARE, size=64).shape == (64, 64)


def test_square_keeps_a_margin_of_about_two_pixels() -> None:
    top, bottom, left, right = _ink_box(rasterize(SQUARE))
    assert (top, left) in {(1, 1), (2, 2)} and (bottom, right) in {(25, 25), (26, 26)}
    assert top == left and 27 - bottom == top


def test_small_drawing_is_centred() -> None:
    corner = [[[0, 60], [0, 20]]]
    moved = [[[195, 255], [100, 120]]]
    assert np.array_equal(rasterize(corner), rasterize(moved))
    top, bottom, left, right = _ink_box(rasterize(corner))
    assert abs((top + bottom) - 27) <= 1 and abs((left + right) - 27) <= 1


def test_empty_and_degenerate_drawings() -> None:
    assert not rasterize([]).any()
    assert not rasterize([[[], []]]).any()
    dot = rasterize([[[0, 0], [0, 0]]])
    assert dot.any() and _ink_box(dot)[0] >= 12  # a dot in the middle
    assert rasterize([[[5], [5]]]).any()  # a one-point stroke still inks


def test_oversized_coordinates_stay_on_canvas() -> None:
    top, bottom, left, right = _ink_box(rasterize([[[0, 1000], [0, 1000]]]))
    assert top >= 1 and left >= 1 and bottom <= 26 and right <= 26


def test_batch() -> None:
    batch = rasterize_batch([SQUARE, STAR])
    assert batch.shape == (2, 28, 28) and batch.dtype == np.uint8
    assert np.array_equal(batch[1], rasterize(STAR))
    assert rasterize_batch([]).shape == (0, 28, 28)


def test_batch_is_rasterize_stacked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raster, "_BATCH", 3)  # several vectorised passes, one of them short
    drawings = [SQUARE, STAR, [], [[[0, 0], [0, 0]]], [[[5], [5]]], [[[0, 1000], [0, 1000]]], STAR]
    for size in (28, 64):
        batch = rasterize_batch(iter(drawings), size=size)  # any iterable, e.g. a generator
        assert batch.shape == (len(drawings), size, size) and batch.dtype == np.uint8
        assert np.array_equal(batch, np.stack([rasterize(d, size=size) for d in drawings]))


def test_fast_enough() -> None:
    start = time.perf_counter()
    for _ in range(100):
        rasterize(STAR)
    per_drawing_ms = (time.perf_counter() - start) * 10
    assert per_drawing_ms < 5  # ~0.15 ms measured; loose for busy CI machines
    start = time.perf_counter()
    rasterize_batch([STAR] * 100)
    assert (time.perf_counter() - start) * 10 < 5  # ~0.1 ms a drawing measured


def test_render_png_is_black_on_white() -> None:
    image = Image.open(io.BytesIO(render_png(STAR)))
    assert image.format == "PNG" and image.size == (256, 256)
    pixels = np.asarray(image.convert("L"))
    assert pixels[0, 0] == 255 and pixels.min() == 0


@pytest.mark.parametrize("drawing", [SQUARE, STAR, [[[0, 255], [0, 40]]]])
def test_png_round_trip_is_close_to_rasterize(drawing: list) -> None:
    back = bitmap_from_png(render_png(drawing))
    assert back.shape == (28, 28) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - rasterize(drawing).astype(int)).mean() < 8


def test_png_polarity_and_modes_do_not_matter() -> None:
    expected = rasterize(STAR)
    dark_on_light = np.asarray(Image.open(io.BytesIO(render_png(STAR, size=300))).convert("L"))
    white_on_black = 255 - dark_on_light
    variants = [
        _png(white_on_black),
        _png(dark_on_light),
        _png(dark_on_light, "RGB"),
        _png(dark_on_light, "P"),
    ]
    # Black ink on a transparent background (a canvas export).
    rgba = np.zeros((300, 300, 4), dtype=np.uint8)
    rgba[..., 3] = white_on_black
    variants.append(_png(rgba))
    for data in variants:
        assert np.abs(bitmap_from_png(data).astype(int) - expected.astype(int)).mean() < 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an image", "not a PNG"),
        (_png(np.full((50, 50), 255, dtype=np.uint8)), "no ink"),
        (_png(np.zeros((5000, 10), dtype=np.uint8)), "too large"),
    ],
)
def test_bad_pngs_raise_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bitmap_from_png(data)


def test_truncated_png_raises_value_error() -> None:
    with pytest.raises(ValueError):
        bitmap_from_png(render_png(STAR)[:200])


def test_non_png_is_refused() -> None:
    out = io.BytesIO()
    Image.new("L", (10, 10)).save(out, format="BMP")
    with pytest.raises(ValueError, match="PNG"):
        bitmap_from_png(out.getvalue())
