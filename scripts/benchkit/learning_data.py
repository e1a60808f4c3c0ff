"""The learning benchmark's drawings: old words' replay pool and held-out drawings, sets of
new words, and the folds that split each new word's drawings into training and test.

Old words (the seed's 20): simplified/<word>.ndjson has 25 drawings of each, split
`SIMPLIFIED_POOL` into the training pool and the rest held out; bitmaps/<word>.npy (9 of them)
adds rows that do not repeat the simplified drawings, the first `npy_pool` (after a seeded
shuffle) to the pool and the next `holdout_cap` held out. The pool is what the product would
hold as accepted labels of the old words: the cycle's replay sampling picks from it.

scripts/train_trial.py splits the same way (same seed and order), with a pool of exactly the
replay budget (185 .npy rows a word) instead of `npy_pool`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from db.datasets import Examples
from ml.datasets import read_bitmaps, read_ndjson
from ml.raster import rasterize_batch

SIMPLIFIED_POOL = 15  # of the 25 simplified drawings of each old word; 10 held out
SPLIT_SEED = 7
_IDS = uuid.UUID("6f1c0c52-6c8e-4b8e-9a53-0b1b1d5f6a10")  # namespace of the benchmark's ids


@dataclass
class OldWords:
    pool: Examples  # what the cycle's replay sampling chooses from
    test_bitmaps: np.ndarray  # held out: never trained on
    test_labels: list[str]


def example_ids(word: str, source: str, count: int) -> list[uuid.UUID]:
    """Stable ids (the replay sample is a hash of them): the same drawing, the same id."""
    return [uuid.uuid5(_IDS, f"{source}:{word}:{i}") for i in range(count)]


def simplified_bitmaps(quickdraw: Path, word: str) -> np.ndarray:
    """The word's simplified drawings, rasterised as the product does, in file order."""
    return rasterize_batch(
        d.strokes for d in read_ndjson(quickdraw / "simplified" / f"{word}.ndjson")
    )


def bitmap_manifest(quickdraw: Path) -> dict[str, Any]:
    """bitmaps/manifest.json: which words have Google's bitmaps, and how their files start."""
    manifest: dict[str, Any] = json.loads(
        (quickdraw / "bitmaps" / "manifest.json").read_text(encoding="utf-8")
    )
    return manifest


def shuffled_npy_rows(
    quickdraw: Path,
    manifest: dict[str, Any],
    word: str,
    simplified_count: int,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """The word's bitmaps/<word>.npy rows that do not repeat its `simplified_count`
    simplified drawings (some files start with them), shuffled by `rng`; None if it has none."""
    if word not in manifest:
        return None
    rows = read_bitmaps(quickdraw / "bitmaps", word)
    if manifest[word].get("first_rows_match_simplified"):
        rows = rows[simplified_count:]  # the simplified drawings again: skip
    return rows[rng.permutation(len(rows))]


def _labelled(word: str, source: str, bitmaps: np.ndarray, first: int = 0) -> Examples:
    ids = example_ids(word, source, first + len(bitmaps))[first:]
    return Examples(ids, bitmaps, [word] * len(bitmaps), ["benchmark"] * len(bitmaps))


def old_words(
    quickdraw: Path, words: Sequence[str], npy_pool: int, holdout_cap: int, seed: int = SPLIT_SEED
) -> OldWords:
    manifest = bitmap_manifest(quickdraw)
    rng = np.random.default_rng(seed)
    pool: list[Examples] = []
    test_b: list[np.ndarray] = []
    test_l: list[str] = []
    for word in words:
        drawings = simplified_bitmaps(quickdraw, word)
        order = rng.permutation(len(drawings))
        kept, held = order[:SIMPLIFIED_POOL], order[SIMPLIFIED_POOL:]
        pool.append(_labelled(word, "simplified", drawings[kept]))
        test_b.append(drawings[held])
        test_l += [word] * len(held)
        rows = shuffled_npy_rows(quickdraw, manifest, word, len(drawings), rng)
        if rows is not None:
            pool.append(_labelled(word, "npy", rows[:npy_pool]))
            held_rows = rows[npy_pool : npy_pool + holdout_cap]
            test_b.append(held_rows)
            test_l += [word] * len(held_rows)
    return OldWords(Examples.concat(pool), np.concatenate(test_b), test_l)


def unknown_words(quickdraw: Path, known: Sequence[str]) -> list[str]:
    """The words with simplified drawings that the parent does not know, sorted."""
    names = sorted(p.stem for p in (quickdraw / "simplified").glob("*.ndjson"))
    return [w for w in names if w not in set(known)]


def new_word_sets(candidates: Sequence[str], sets: int, size: int, seed: int) -> list[list[str]]:
    """`sets` disjoint sets of `size` words drawn from `candidates` with a fixed seed (set 0 is
    the one the defaults were tuned on), each sorted."""
    if sets * size > len(candidates):
        raise ValueError(f"{sets} sets of {size} words need more than {len(candidates)} words")
    order = np.random.default_rng(seed).permutation(len(candidates))
    return [sorted(candidates[i] for i in order[k * size : (k + 1) * size]) for k in range(sets)]


def fold_mask(count: int, folds: int, fold: int) -> np.ndarray:
    """True for the drawings held out in `fold` (0-based): the fold-th of `folds` contiguous
    blocks, so every drawing is held out in exactly one fold."""
    if not 0 <= fold < folds or folds < 2 or count < folds:
        raise ValueError(f"fold {fold} of {folds} over {count} drawings")
    edges = np.linspace(0, count, folds + 1).round().astype(int)
    held = np.zeros(count, dtype=bool)
    held[edges[fold] : edges[fold + 1]] = True
    return held


@dataclass
class NewWords:
    train: Examples  # players' drawings with the word as label
    test_bitmaps: np.ndarray
    test_labels: list[str]


def new_words_fold(
    drawings: dict[str, np.ndarray], words: Sequence[str], folds: int, fold: int
) -> NewWords:
    """Each word's drawings split by `fold_mask`: the rest to train, the fold to test."""
    train: list[Examples] = []
    test_b: list[np.ndarray] = []
    test_l: list[str] = []
    for word in words:
        bitmaps = drawings[word]
        held = fold_mask(len(bitmaps), folds, fold)
        ids = example_ids(word, "player", len(bitmaps))
        kept = np.flatnonzero(~held)
        train.append(
            Examples(
                [ids[i] for i in kept], bitmaps[kept], [word] * len(kept), ["benchmark"] * len(kept)
            )
        )
        test_b.append(bitmaps[held])
        test_l += [word] * int(held.sum())
    return NewWords(Examples.concat(train), np.concatenate(test_b), test_l)
