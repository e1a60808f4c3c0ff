"""Confusion matrix counts and its PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.confusion import OTHER, confusion_matrix, render_confusion_png

CLASSES = ["cat", "dog", "fish"]


def test_counts_rows_truth_columns_predicted() -> None:
    truths = ["cat", "cat", "dog", "fish", "fish", "fish"]
    predicted = ["cat", "dog", "dog", "fish", "cat", "fish"]
    matrix = confusion_matrix(predicted, truths, CLASSES)
    assert matrix.shape == (4, 4)
    assert matrix.dtype == np.int64
    expected = [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert matrix.tolist() == expected
    assert matrix.sum() == len(truths)


def test_unknown_labels_go_to_other() -> None:
    matrix = confusion_matrix(["cat", "zebra", "dog"], ["horse", "cat", "dog"], CLASSES)
    assert matrix[3, 0] == 1  # a horse (not a class) predicted cat
    assert matrix[0, 3] == 1  # a cat predicted zebra
    assert matrix[1, 1] == 1
    assert matrix.sum(axis=1).tolist() == [1, 1, 0, 1]


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        confusion_matrix(["cat"], [], CLASSES)
    with pytest.raises(ValueError):
        confusion_matrix([], [], ["cat", "cat"])
    with pytest.raises(ValueError):
        confusion_matrix([], [], ["cat", OTHER])


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_png_grows_with_classes_and_hides_empty_other() -> None:
    known = confusion_matrix(["cat", "dog", "fish"], ["cat", "dog", "fish"], CLASSES)
    with_other = confusion_matrix(["cat", "zebra"], ["cat", "dog"], CLASSES)
    small, large = (
        _image(render_confusion_png(known, CLASSES)),
        _image(render_confusion_png(with_other, CLASSES)),
    )
    assert small.height < large.height  # the "other" row is drawn only when used
    words = [f"word {i}" for i in range(30)]
    many = _image(render_confusion_png(np.eye(30, dtype=np.int64) * 1000, words))
    assert many.width > large.width and many.height > large.height


def test_png_shading_follows_row_share() -> None:
    matrix = np.array([[10, 0], [5, 5]])
    image = _image(render_confusion_png(matrix, ["a", "b"])).convert("L")
    pixels = np.asarray(image)
    # The darkest pixels belong to a full row share; a blank image would have none.
    assert pixels.min() < 100 and pixels.max() == 255


def test_png_rejects_mismatched_labels() -> None:
    with pytest.raises(ValueError):
        render_confusion_png(np.zeros((3, 3)), ["a"])
    with pytest.raises(ValueError):
        render_confusion_png(np.zeros((2, 3)), ["a", "b"])
