"""Bitmaps -> predictions with a loaded model: one forward pass per batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

TOP_K = 3


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    top: list[tuple[str, float]]  # best TOP_K (label, softmax probability), descending

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "top": [{"label": label, "confidence": conf} for label, conf in self.top],
        }


class Predictor:
    """Wraps a model in eval mode and its classes (in output order)."""

    def __init__(self, model: nn.Module, classes: list[str]) -> None:
        self.model = model.eval()
        self.classes = list(classes)

    def probabilities(self, bitmaps: np.ndarray) -> np.ndarray:
        """(N, classes) softmax probabilities for uint8 (N, 28, 28) bitmaps, white ink on
        black (a (28, 28) is N=1)."""
        array = np.asarray(bitmaps)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[1:] != (28, 28):
            raise ValueError(f"expected (N, 28, 28) bitmaps, got shape {array.shape}")
        if len(array) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        x = torch.from_numpy(array.astype(np.float32) / 255.0).unsqueeze(1)
        with torch.inference_mode():
            return torch.softmax(self.model(x), dim=1).numpy()

    def predict(self, bitmaps: np.ndarray) -> list[Prediction]:
        """Predictions for uint8 (N, 28, 28) bitmaps, white ink on black (a (28, 28) is N=1)."""
        return self.predictions(self.probabilities(bitmaps))

    def predictions(self, probabilities: np.ndarray) -> list[Prediction]:
        """The top-K of each row of `probabilities` (as `probabilities` gives them)."""
        if len(probabilities) == 0:
            return []
        probs = torch.from_numpy(probabilities)
        k = min(TOP_K, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        out = []
        for vals, idxs in zip(values.tolist(), indices.tolist(), strict=True):
            top = [(self.classes[i], float(v)) for v, i in zip(vals, idxs, strict=True)]
            out.append(Prediction(label=top[0][0], confidence=top[0][1], top=top))
        return out
