"""The junk benchmark's synthetic doodles (scripts/benchkit/junk.py): the kinds dealt in turn,
the dataset's simplified frame, reproducible, and what the product's checks make of a dot."""

from __future__ import annotations

from ml.quality import NEAR_EMPTY, assess
from ml.raster import rasterize
from tests.fixtures.benchkit import load_benchkit

load_benchkit()

from benchkit.junk import SCRIBBLE_KINDS, dots, scribbles  # noqa: E402


def test_scribbles_deal_the_kinds_in_turn_in_the_datasets_frame():
    made = scribbles(12, seed=3)
    assert [kind for kind, _ in made] == list(SCRIBBLE_KINDS) * 3
    for _, strokes in made:
        values = [v for stroke in strokes for axis in stroke for v in axis]
        assert min(values) >= 0 and max(values) <= 255
        # Scaled as the dataset is: the longest side spans the whole 0..255.
        xs = [v for stroke in strokes for v in stroke[0]]
        ys = [v for stroke in strokes for v in stroke[1]]
        assert max(max(xs) - min(xs), max(ys) - min(ys)) == 255
    assert scribbles(12, seed=3) == made and scribbles(12, seed=4) != made


def test_a_dot_is_near_empty_for_the_product():
    for strokes in dots(5, seed=1):
        assert assess(rasterize(strokes), min_ink=0.01, max_ink=0.6) == NEAR_EMPTY
