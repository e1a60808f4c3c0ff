"""ml.strokes.simplify on the dataset's raw drawings lands close to their simplified twins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.datasets import read_ndjson
from ml.raster import rasterize
from ml.strokes import is_raw, simplify

# Measured over the 482 raw drawings of the 20 words: point counts differ by 1.9 % on average
# (13 % at worst, a few points on short drawings); rasterised MAD 0.92/255 on average,
# 4.3/255 at worst. The thresholds leave about 2x margin.
MAX_MEAN_COUNT_DIFF = 0.04
MAX_COUNT_DIFF = 0.3
MAX_MEAN_MAD = 2.0
MAX_MAD = 10.0


def _count(drawing: list) -> int:
    return sum(len(stroke[0]) for stroke in drawing)


@pytest.fixture(scope="module")
def pairs(shared_data: Path) -> list[tuple[list, list]]:
    out = []
    for path in sorted((shared_data / "quickdraw" / "raw").glob("*.ndjson")):
        twins = {
            d.key_id: d.strokes
            for d in read_ndjson(shared_data / "quickdraw" / "simplified" / path.name)
        }
        for drawing in read_ndjson(path):
            assert drawing.raw and not is_raw(twins[drawing.key_id])
            out.append((simplify(drawing.strokes), twins[drawing.key_id]))
    assert len(out) > 400
    return out


def test_point_counts_are_close(pairs: list[tuple[list, list]]) -> None:
    diffs = [abs(_count(ours) - _count(theirs)) / _count(theirs) for ours, theirs in pairs]
    assert all(len(ours) == len(theirs) for ours, theirs in pairs)
    print(f"point count difference: mean {np.mean(diffs):.4f}, max {max(diffs):.4f}")
    assert np.mean(diffs) <= MAX_MEAN_COUNT_DIFF
    assert max(diffs) <= MAX_COUNT_DIFF


def test_rasterised_images_are_close(pairs: list[tuple[list, list]]) -> None:
    mads = [
        np.abs(rasterize(ours).astype(int) - rasterize(theirs).astype(int)).mean()
        for ours, theirs in pairs
    ]
    print(f"raster MAD simplify(raw) vs simplified: mean {np.mean(mads):.2f}, max {max(mads):.2f}")
    assert np.mean(mads) <= MAX_MEAN_MAD
    assert max(mads) <= MAX_MAD
