"""The seed's classifier (vietnguyen91/QuickDraw): a small CNN on 28x28 bitmaps.

Layer names and shapes match the seed's state_dict exactly, so its weights load strictly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torch import nn

SEED_DIR = Path(__file__).resolve().parent / "seed"


class QuickDrawNet(nn.Module):
    """Input (N, 1, 28, 28) float, ink 1.0 on 0.0; output (N, num_classes) logits."""

    def __init__(self, num_classes: int = 20) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 32, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(32, 64, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2))
        # No activation between the linear layers: that is how the seed was trained.
        self.fc1 = nn.Sequential(nn.Linear(64 * 4 * 4, 512), nn.Dropout(0.5))
        self.fc2 = nn.Sequential(nn.Linear(512, 128), nn.Dropout(0.5))
        self.fc3 = nn.Sequential(nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        return self.fc3(self.fc2(self.fc1(x.flatten(1))))


def load_model(state_dict_bytes: bytes, num_classes: int) -> QuickDrawNet:
    """A model in eval mode from serialized state_dict bytes (weights only, strict keys)."""
    state = torch.load(io.BytesIO(state_dict_bytes), map_location="cpu", weights_only=True)
    model = QuickDrawNet(num_classes)
    model.load_state_dict(state, strict=True)
    return model.eval()


def seed_weights_path() -> Path:
    """The starting model's weights, shipped in the package."""
    return SEED_DIR / "quickdraw20_state_dict.pt"


def seed_classes() -> list[str]:
    """The starting model's classes, in output order."""
    classes = json.loads((SEED_DIR / "classes.json").read_text(encoding="utf-8"))
    return [str(c) for c in classes]
