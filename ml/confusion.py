"""Confusion matrices of predictions against truths, and a PNG of one for people.

Rows are truths, columns predictions, both in the order of `classes`. A label outside
`classes` (a truth or a prediction the matrix was not asked about, e.g. a word the model does not
know yet, or a word only an older model knows) is counted in one extra last row and column,
"other", so that every prediction is counted and rows still sum to the number of drawings of
their word. The matrix is therefore (len(classes) + 1) square; its "other" row and column are
zero when every label is known.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OTHER = "other"

_CELL = 28  # px a cell
_MARGIN = 8
_FONT_SIZE = 12
_TITLE = "rows: truth, columns: predicted (shade: share of the row)"


def confusion_matrix(
    predicted: Sequence[str], truths: Sequence[str], classes: Sequence[str]
) -> np.ndarray:
    """int64 (K+1, K+1) counts, K = len(classes); [i, j] = drawings of class i predicted j.

    Index K is "other": any label not in `classes`.
    """
    if len(predicted) != len(truths):
        raise ValueError(f"{len(predicted)} predictions for {len(truths)} truths")
    if len(set(classes)) != len(classes):
        raise ValueError("classes must be unique")
    if OTHER in classes:
        raise ValueError(f"{OTHER!r} is reserved for labels outside the classes")
    index = {label: i for i, label in enumerate(classes)}
    other = len(classes)
    matrix = np.zeros((other + 1, other + 1), dtype=np.int64)
    for guess, truth in zip(predicted, truths, strict=True):
        matrix[index.get(truth, other), index.get(guess, other)] += 1
    return matrix


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 ships a scalable font
    except TypeError:  # pragma: no cover - older Pillow
        return ImageFont.load_default()


def _text_width(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> float:
    left, _, right, _ = font.getbbox(text)
    return float(right - left)


def render_confusion_png(matrix: np.ndarray, classes: Sequence[str]) -> bytes:
    """A PNG heat map of `matrix` (rows truth, columns predicted).

    `classes` names the rows and columns in order; a matrix one larger (as `confusion_matrix`
    gives) gets "other" as its last label, shown only when it holds any count. Each cell is
    shaded by its share of its row (white 0 .. dark blue 1) and shows its count when the count
    fits in the cell; the diagonal is outlined.
    """
    counts = np.asarray(matrix)
    labels = list(classes)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {counts.shape}")
    if counts.shape[0] == len(labels) + 1:
        labels.append(OTHER)
        if not counts[-1].any() and not counts[:, -1].any():
            counts, labels = counts[:-1, :-1], labels[:-1]
    if counts.shape[0] != len(labels):
        raise ValueError(f"{len(labels)} labels for a {counts.shape[0]}-square matrix")
    k = len(labels)
    font = _font(_FONT_SIZE)
    small = _font(_FONT_SIZE - 2)
    label_w = int(max((_text_width(font, s) for s in labels), default=0)) + 2 * _MARGIN
    title_h = _FONT_SIZE + 2 * _MARGIN
    top = title_h + label_w  # column labels are written vertically above the grid
    width = max(label_w + k * _CELL + _MARGIN, int(_text_width(font, _TITLE)) + 2 * _MARGIN)
    height = top + k * _CELL + _MARGIN
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    pen.text((_MARGIN, _MARGIN), _TITLE, fill="black", font=font)

    totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    for i, name in enumerate(labels):
        y = top + i * _CELL
        pen.text((label_w - _MARGIN, y + _CELL / 2), name, fill="black", font=font, anchor="rm")
        # Column label: drawn horizontally on its own image, then rotated to read bottom-up.
        tag = Image.new("L", (label_w, _CELL), 255)
        ImageDraw.Draw(tag).text((_MARGIN, _CELL / 2), name, fill=0, font=font, anchor="lm")
        column = tag.rotate(90, expand=True)
        image.paste(Image.merge("RGB", [column] * 3), (label_w + i * _CELL, title_h))
    for i in range(k):
        for j in range(k):
            x, y = label_w + j * _CELL, top + i * _CELL
            share = float(shares[i, j])
            colour = (
                round(255 - share * (255 - 8)),
                round(255 - share * (255 - 48)),
                round(255 - share * (255 - 107)),
            )
            pen.rectangle((x, y, x + _CELL, y + _CELL), fill=colour, outline=(220, 220, 220))
            if i == j and labels[i] != OTHER:
                pen.rectangle((x, y, x + _CELL, y + _CELL), outline=(200, 60, 40), width=2)
            count = int(counts[i, j])
            text = str(count)
            if count and _text_width(small, text) <= _CELL - 4:
                ink = "white" if share > 0.5 else "black"
                pen.text((x + _CELL / 2, y + _CELL / 2), text, fill=ink, font=small, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
