"""Scoring a model on drawings the way a worker sees them (strokes -> raster -> network).

What `doodle eval` runs; the flows score on the golden set's stored bitmaps instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ml.datasets import Drawing
from ml.evaluate import score
from ml.network import QuickDrawNet
from ml.predict import Prediction, Predictor
from ml.raster import rasterize_batch
from ml.strokes import to_simplified

BATCH = 256


def score_drawings(
    model: QuickDrawNet, classes: list[str], drawings: Iterable[Drawing]
) -> dict[str, Any]:
    """n, top1, top3, map3 and per-word top-1 (n is 0 for no drawings)."""
    predictor = Predictor(model, classes)
    predictions: list[Prediction] = []
    truths: list[str] = []
    pending = iter(drawings)
    while batch := list(itertools.islice(pending, BATCH)):
        bitmaps = rasterize_batch(to_simplified(d.strokes) for d in batch)
        predictions.extend(predictor.predict(bitmaps))
        truths.extend(d.word for d in batch)
    return score(predictions, truths)
