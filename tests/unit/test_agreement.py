"""ml.agreement: a prompt's drawings against each other, on made-up directions."""

from __future__ import annotations

import numpy as np
import pytest

from ml.agreement import agreements, robust_centre, unit_rows, word_centres


def _cluster(rng: np.random.Generator, centre: np.ndarray, n: int, noise: float) -> np.ndarray:
    return centre + noise * rng.standard_normal((n, centre.size))


def test_a_stray_row_is_an_outlier_and_the_cluster_is_not():
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(32)
    rows = np.concatenate([_cluster(rng, centre, 24, 0.3), -centre[None]])
    found = agreements(unit_rows(rows, np.zeros(32)), ["fish"] * 25, judged=[True] * 25, fence=2.5)
    assert all(a is not None for a in found)
    assert [a.outlier for a in found if a] == [False] * 24 + [True]
    assert found[0] is not None and found[0].group == 25


def test_only_judged_rows_get_an_answer_but_all_rows_shape_the_centre():
    rng = np.random.default_rng(1)
    centre = rng.standard_normal(16)
    rows = unit_rows(_cluster(rng, centre, 10, 0.2), np.zeros(16))
    found = agreements(rows, ["a"] * 10, judged=[False] * 9 + [True], fence=2.5)
    assert found[:9] == [None] * 9 and found[9] is not None and found[9].group == 10


def test_words_are_judged_apart():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    # 25 drawings of each word, and a drawing of "b" posted under the prompt "a".
    rows = unit_rows(np.concatenate([_cluster(rng, a, 25, 0.5), _cluster(rng, b, 26, 0.5)]), 0)
    words = ["a"] * 25 + ["b"] * 25 + ["a"]
    found = agreements(rows, words, judged=[True] * 51, fence=2.5)
    outliers = [i for i, f in enumerate(found) if f and f.outlier]
    # The stray one, and at most a few in the tails of the words' own spread.
    assert 50 in outliers and len(outliers) <= 3
    centres = word_centres(rows[:50], words[:50])
    assert float(centres["a"] @ robust_centre(rows[:25])) == pytest.approx(1.0)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        agreements(np.zeros((2, 3)), ["a"], judged=[True, True], fence=2.5)
