"""Scores of predictions against true labels (top-1, top-3, MAP@3, per word)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ml.predict import Prediction

_DIGITS = 4


def _rank(prediction: Prediction, truth: str) -> int | None:
    """1-based rank of the truth among the top 3, or None."""
    for rank, (label, _) in enumerate(prediction.top[:3], start=1):
        if label == truth:
            return rank
    return None


def score(predictions: Sequence[Prediction], truths: Sequence[str]) -> dict[str, Any]:
    """n, top1, top3, map3 (Kaggle Quick Draw: 1, 1/2, 1/3 for a hit at rank 1..3), per_word.

    Fractions are 0..1 rounded to 4 decimals; an empty input scores 0.
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} truths")
    n = len(truths)
    top1 = top3 = 0
    map3 = 0.0
    words: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for prediction, truth in zip(predictions, truths, strict=True):
        rank = _rank(prediction, truth)
        hit = prediction.label == truth
        top1 += hit
        top3 += rank is not None
        map3 += 1.0 / rank if rank else 0.0
        words[truth][0] += 1
        words[truth][1] += hit

    def frac(x: float, total: int) -> float:
        return round(x / total, _DIGITS) if total else 0.0

    return {
        "n": n,
        "top1": frac(top1, n),
        "top3": frac(top3, n),
        "map3": frac(map3, n),
        "per_word": {w: {"n": c, "top1": frac(h, c)} for w, (c, h) in sorted(words.items())},
    }
