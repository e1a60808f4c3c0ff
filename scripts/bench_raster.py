"""Benchmark ml.raster against the rasteriser it replaced (kept below as `old_rasterize`).

On the 500 simplified drawings of the seed's 20 words (../shared/data/quickdraw), prints for
each: the median µs per drawing of `rasterize` (each drawing timed alone, median over rounds,
then median and mean over drawings) and of a batched call (the whole list at once, median over
rounds), the mean absolute difference to Google's bitmaps (out of 255, over the pairs listed in
bitmaps/manifest.json) and the seed model's top-1 on the 500 drawings.

    .venv/bin/python scripts/bench_raster.py [--shared-data PATH] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.datasets import read_bitmaps, read_ndjson
from ml.network import load_model, seed_classes, seed_weights_path
from ml.predict import Predictor
from ml.raster import rasterize, rasterize_batch


def old_rasterize(drawing: list) -> np.ndarray:
    """The previous ml.raster.rasterize: Pillow on a 224 px canvas, box-reduced to 28 px."""
    factor, side, canvas_units = 8, 224, 256.0 + 48.0
    canvas = Image.new("L", (side, side), 0)
    strokes = [s for s in drawing if len(s) >= 2 and len(s[0]) and len(s[0]) == len(s[1])]
    if not strokes:
        return np.asarray(canvas.reduce(factor), dtype=np.uint8)
    xs = [float(v) for s in strokes for v in s[0]]
    ys = [float(v) for s in strokes for v in s[1]]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    unit = side / canvas_units
    scale = min(1.0, 255.0 / max(x1 - x0, y1 - y0, 1e-9)) * unit
    dx = canvas_units / 2 * unit - (x0 + x1) / 2 * scale
    dy = canvas_units / 2 * unit - (y0 + y1) / 2 * scale
    width = 16.0 * unit
    radius = width / 2
    pen = ImageDraw.Draw(canvas)
    for stroke in strokes:
        points = [
            (x * scale + dx, y * scale + dy) for x, y in zip(stroke[0], stroke[1], strict=True)
        ]
        if len(points) > 1:
            pen.line(points, fill=255, width=round(width), joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(canvas.reduce(factor), dtype=np.uint8)


def old_rasterize_batch(drawings: list) -> np.ndarray:
    return np.stack([old_rasterize(d) for d in drawings])


def time_single(fn: Callable, drawings: list, rounds: int) -> list[float]:
    """µs per drawing: each drawing's median over `rounds` rounds."""
    times = [[0.0] * rounds for _ in drawings]
    for r in range(rounds):
        for i, drawing in enumerate(drawings):
            start = time.perf_counter()
            fn(drawing)
            times[i][r] = (time.perf_counter() - start) * 1e6
    return [statistics.median(t) for t in times]


def time_batch(fn: Callable, drawings: list, rounds: int) -> float:
    """µs per drawing of one call on the whole list, median over `rounds` rounds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(drawings)
        times.append((time.perf_counter() - start) * 1e6 / len(drawings))
    return statistics.median(times)


def main() -> None:
    default_data = os.environ.get("DOODLE_SHARED_DATA") or Path(__file__).resolve().parents[2] / (
        "shared/data"
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=Path(default_data))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    root = args.shared_data / "quickdraw"

    classes = seed_classes()
    drawings, words = [], []
    for word in classes:
        for d in read_ndjson(root / "simplified" / f"{word}.ndjson"):
            drawings.append(d.strokes)
            words.append(word)
    pairs = []
    manifest = json.loads((root / "bitmaps" / "manifest.json").read_text())
    for word, entry in manifest.items():
        if entry["first_rows_match_simplified"]:
            google = read_bitmaps(root / "bitmaps", word)
            for i, d in enumerate(read_ndjson(root / "simplified" / f"{word}.ndjson")):
                pairs.append((d.strokes, google[i].reshape(28, 28).astype(int)))
    predictor = Predictor(load_model(seed_weights_path().read_bytes(), len(classes)), classes)

    print(f"{len(drawings)} drawings, {len(pairs)} pairs with Google's bitmaps")
    print(
        f"{'':4} {'single µs median':>16} {'(mean)':>8} {'batch µs':>9} {'MAD/255':>8} {'top-1':>6}"
    )
    for name, single, batch in [
        ("old", old_rasterize, old_rasterize_batch),
        ("new", rasterize, rasterize_batch),
    ]:
        per_drawing = time_single(single, drawings, args.rounds)
        batched = time_batch(batch, drawings, args.rounds)
        mad = np.mean([np.abs(single(d).astype(int) - g).mean() for d, g in pairs])
        predictions = predictor.predict(batch(drawings))
        top1 = np.mean([p.label == w for p, w in zip(predictions, words, strict=True)])
        print(
            f"{name:4} {statistics.median(per_drawing):16.1f} {statistics.mean(per_drawing):8.1f}"
            f" {batched:9.1f} {mad:8.2f} {top1:6.3f}"
        )


if __name__ == "__main__":
    main()
