"""ml.strokes: format detection and the dataset's raw -> simplified recipe."""

from __future__ import annotations

import pytest

from ml.strokes import is_raw, simplify, to_simplified

SQUARE = [[[0, 255, 255, 0, 0], [0, 0, 255, 255, 0]]]


def _points(drawing: list) -> list[tuple[int, int]]:
    return [p for stroke in drawing for p in zip(stroke[0], stroke[1], strict=True)]


def test_simplified_drawing_is_not_raw() -> None:
    assert not is_raw(SQUARE)
    assert not is_raw([[[1, 200], [0, 255]]])  # RDP may leave a min of 1 or 2
    assert not is_raw([])


@pytest.mark.parametrize(
    "drawing",
    [
        [[[0, 255], [0, 255], [0, 10]]],  # timings
        [[[0, 300], [0, 10]]],  # screen pixels
        [[[0.5, 255], [0, 255]]],  # fractional
        [[[100, 355], [100, 200]]],  # not aligned (and out of range)
        [[[50, 200], [60, 120]]],  # floating in the middle of the canvas
        [[[0, 40], [0, 30]]],  # aligned but small: not scaled yet
        [[[-3, 100], [0, 255]]],  # negative
    ],
)
def test_raw_drawings_are_detected(drawing: list) -> None:
    assert is_raw(drawing)


def test_simplify_aligns_scales_and_rounds() -> None:
    raw = [[[100, 150, 200], [300, 300, 340], [0, 10, 20]]]
    (stroke,) = simplify(raw)
    assert len(stroke) == 2  # timings dropped
    xs, ys = stroke
    assert min(xs) == 0 and min(ys) == 0
    assert max(max(xs), max(ys)) == 255
    assert all(isinstance(v, int) for v in xs + ys)
    assert (xs[0], ys[0]) == (0, 0) and (xs[-1], ys[-1]) == (255, 102)


def test_simplify_drops_collinear_points() -> None:
    line = [[list(range(0, 500, 5)), [3 * x for x in range(0, 500, 5)]]]
    assert simplify(line) == [[[0, 85], [0, 255]]]


def test_simplify_keeps_corners() -> None:
    raw = [[[10, 20, 30, 30, 30], [10, 10, 10, 20, 30]]]
    assert _points(simplify(raw)) == [(0, 0), (255, 0), (255, 255)]


def test_single_point_stroke_becomes_two_points() -> None:
    raw = [[[675], [158], [0]], [[275, 675], [158, 558], [5, 9]]]
    first, _ = simplify(raw)
    assert first == [[255, 255], [0, 0]]


def test_degenerate_drawing_does_not_divide_by_zero() -> None:
    assert simplify([[[40, 40], [70, 70]], [[40], [70]]]) == [
        [[0, 0], [0, 0]],
        [[0, 0], [0, 0]],
    ]


def test_empty_strokes_are_skipped() -> None:
    assert simplify([]) == []
    assert simplify([[[], []], [[5, 10], [5, 5]]]) == [[[0, 255], [0, 0]]]


def test_malformed_stroke_raises() -> None:
    with pytest.raises(ValueError, match="stroke 0"):
        simplify([[[1, 2, 3], [1, 2]]])


def test_to_simplified_passes_simplified_through() -> None:
    assert to_simplified(SQUARE) == SQUARE
    assert to_simplified([[[0.0, 255.0], [0.0, 255.0]]]) == [[[0, 255], [0, 255]]]


def test_to_simplified_simplifies_raw() -> None:
    raw = [[[100, 150, 200], [300, 300, 350], [0, 10, 20]]]
    assert to_simplified(raw) == simplify(raw)
