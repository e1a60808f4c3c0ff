"""The learning benchmark's pure pieces: folds, sets of new words, the split of a new word's
drawings, its summary arithmetic, and the one mapping from Settings to the training config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.settings import Settings
from ml.train import TrainConfig, train_config
from tests.fixtures.benchkit import load_benchkit

load_benchkit()

from benchkit.learning_data import (  # noqa: E402
    example_ids,
    fold_mask,
    new_word_sets,
    new_words_fold,
)


def test_every_drawing_is_held_out_in_exactly_one_fold() -> None:
    masks = [fold_mask(25, 5, k) for k in range(5)]
    assert all(int(m.sum()) == 5 for m in masks)
    assert (np.sum(masks, axis=0) == 1).all()
    assert np.flatnonzero(masks[4]).tolist() == [20, 21, 22, 23, 24]
    uneven = [fold_mask(7, 3, k) for k in range(3)]
    assert (np.sum(uneven, axis=0) == 1).all() and sorted(int(m.sum()) for m in uneven) == [2, 2, 3]


@pytest.mark.parametrize(
    ("count", "folds", "fold"), [(25, 5, 5), (25, 5, -1), (25, 1, 0), (3, 5, 0)]
)
def test_impossible_folds_are_refused(count: int, folds: int, fold: int) -> None:
    with pytest.raises(ValueError, match="fold"):
        fold_mask(count, folds, fold)


def test_word_sets_are_disjoint_seeded_and_sorted() -> None:
    words = [f"w{i:02d}" for i in range(30)]
    sets = new_word_sets(words, 4, 5, seed=2026)
    flat = [w for s in sets for w in s]
    assert len(sets) == 4 and all(len(s) == 5 and s == sorted(s) for s in sets)
    assert len(set(flat)) == 20 and set(flat) <= set(words)
    assert new_word_sets(words, 4, 5, seed=2026) == sets
    assert new_word_sets(words, 4, 5, seed=1) != sets
    with pytest.raises(ValueError, match="need more"):
        new_word_sets(words, 7, 5, seed=2026)


def test_a_fold_trains_on_the_rest_and_tests_on_the_fold() -> None:
    drawings = {
        w: np.arange(25 * 28 * 28, dtype=np.uint32).reshape(25, 28, 28).astype(np.uint8) + k
        for k, w in enumerate(["crab", "saw"])
    }
    fold = new_words_fold(drawings, ["crab", "saw"], 5, 1)
    assert fold.train.labels == ["crab"] * 20 + ["saw"] * 20
    assert fold.test_labels == ["crab"] * 5 + ["saw"] * 5
    assert np.array_equal(fold.test_bitmaps[:5], drawings["crab"][5:10])
    assert np.array_equal(fold.train.bitmaps[:5], drawings["crab"][:5])
    # Ids are stable per drawing, so the cycle's hash-based sampling sees the same drawings.
    crab_ids = example_ids("crab", "player", 25)
    assert fold.train.ids[:5] == crab_ids[:5] and fold.train.ids[5] == crab_ids[10]
    assert not set(fold.train.ids) & set(example_ids("crab", "player", 25)[5:10])


def test_settings_map_to_the_training_config_the_cycle_uses() -> None:
    defaults = train_config(Settings.from_env({}))
    assert defaults == dataclasses.replace(TrainConfig(), threads=1)
    assert not defaults.new_rows_only and defaults.freeze_convs and defaults.distill_weight > 0
    changed = train_config(
        Settings.from_env(
            {
                "DOODLE_TRAIN_EPOCHS": "3",
                "DOODLE_TRAIN_SEED": "9",
                "DOODLE_TRAIN_NEW_ROWS_ONLY": "true",
            }
        )
    )
    assert (changed.epochs, changed.seed, changed.new_rows_only) == (3, 9, True)
