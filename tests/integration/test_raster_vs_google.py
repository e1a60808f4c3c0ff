"""ml.raster reproduces Google's 28x28 bitmaps (the model was trained on them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml.datasets import read_bitmaps, read_ndjson
from ml.raster import rasterize

# The acceptance criterion (out of 255, mean over pairs); measured 1.85 (ml.raster).
MAX_MEAN_MAD = 8.0


def test_rasterize_matches_google_bitmaps(shared_data: Path) -> None:
    root = shared_data / "quickdraw"
    manifest = json.loads((root / "bitmaps" / "manifest.json").read_text())
    words = [w for w, entry in manifest.items() if entry["first_rows_match_simplified"]]
    assert words
    mads = []
    for word in words:
        google = read_bitmaps(root / "bitmaps", word)
        for i, drawing in enumerate(read_ndjson(root / "simplified" / f"{word}.ndjson")):
            ours = rasterize(drawing.strokes)
            mads.append(np.abs(ours.astype(int) - google[i].astype(int)).mean())
    mean = float(np.mean(mads))
    print(f"raster MAD vs Google over {len(mads)} pairs: mean {mean:.2f}/255, max {max(mads):.2f}")
    assert mean <= MAX_MEAN_MAD
