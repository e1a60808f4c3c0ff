"""The product learning benchmark's drawings: which new words, which of their drawings players
post and which are kept for the test, which player posts what, and the old words' test rows.

Pure (no I/O) apart from `read_lines`, `write_ndjson` and `write_old_word_rows`.

- New words: sets of 5 drawn as scripts/learning_bench.py draws them (same candidates, seed and
  order: set k here is its set k), or sets of 10 built around pairs of words alike in shape.
- Folds: each new word's 25 drawings in 5 contiguous blocks (`learning_data.fold_mask`); a fold
  posts the other 20 and tests on its 5, never posted.
- Old words: the last `OLD_ROWS_PER_WORD` rows of Google's bitmaps (9 of the 20 words): the
  shipped sample a default install imports never holds them (data/README.md).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchkit.learning_data import bitmap_manifest, fold_mask, new_word_sets, unknown_words
from ml.datasets import read_bitmaps

WORDS_SEED = 2026  # scripts/learning_bench.py's: the same sets of 5
FOLD_COUNT = 5  # 25 drawings a word: 20 posted, 5 tested
OLD_ROWS_PER_WORD = 100
DRAWINGS_PER_PLAYER = 4

# Pairs of new words alike in shape (each pair's words in the same set of 10): the cycle must
# tell them apart from 20 drawings each. mug / coffee cup also look like the known "cup".
ALIKE_PAIRS: tuple[tuple[str, str], ...] = (
    ("coffee cup", "mug"),
    ("circle", "donut"),
    ("hexagon", "octagon"),
    ("picture frame", "square"),
    ("basketball", "soccer ball"),
    ("banana", "moon"),
    ("vase", "wine bottle"),
    ("light bulb", "pear"),
    ("car", "police car"),
)
PAIRS_PER_SET = 3  # of a set of 10: 3 pairs and 4 other words


def alike_word_sets(
    candidates: Sequence[str], sets: int, size: int = 10, seed: int = WORDS_SEED
) -> list[list[str]]:
    """`sets` disjoint sets of `size` words: `PAIRS_PER_SET` of `ALIKE_PAIRS` each (in order),
    filled with words drawn with a fixed seed from the other candidates; each sorted."""
    known = set(candidates)
    pairs = [p for p in ALIKE_PAIRS if p[0] in known and p[1] in known]
    if sets * PAIRS_PER_SET > len(pairs) or size < 2 * PAIRS_PER_SET:
        raise ValueError(f"{sets} sets of {size} with {PAIRS_PER_SET} alike pairs each: too many")
    paired = {w for p in pairs for w in p}
    others = [w for w in candidates if w not in paired]
    fill = size - 2 * PAIRS_PER_SET
    order = np.random.default_rng(seed).permutation(len(others))
    out = []
    for k in range(sets):
        chosen = [w for p in pairs[k * PAIRS_PER_SET : (k + 1) * PAIRS_PER_SET] for w in p]
        chosen += [others[i] for i in order[k * fill : (k + 1) * fill]]
        out.append(sorted(chosen))
    return out


def word_sets(candidates: Sequence[str], sets: int, size: int) -> list[list[str]]:
    """Sets of 5 (or any size but 10): as the learning benchmark draws them; of 10: alike."""
    if size == 10:
        return alike_word_sets(candidates, sets, size)
    return new_word_sets(candidates, sets, size, WORDS_SEED)


def new_candidates(quickdraw: Path, known: Sequence[str]) -> list[str]:
    return unknown_words(quickdraw, known)


@dataclass(frozen=True)
class Split:
    posted: dict[str, list[str]]  # word -> ndjson lines players post (as read)
    held_out: dict[str, list[str]]  # word -> ndjson lines never posted: the test


def fold_split(lines: dict[str, list[str]], fold: int, folds: int = FOLD_COUNT) -> Split:
    """Each word's lines: the `fold`-th block held out, the rest posted (file order kept)."""
    posted: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    for word, rows in lines.items():
        mask = fold_mask(len(rows), folds, fold)
        posted[word] = [r for r, h in zip(rows, mask, strict=True) if not h]
        held[word] = [r for r, h in zip(rows, mask, strict=True) if h]
    return Split(posted, held)


@dataclass(frozen=True)
class Post:
    player: str
    word: str
    drawing: list[Any]


def posts(
    posted: dict[str, list[str]], run: str, seed: int, per_player: int = DRAWINGS_PER_PLAYER
) -> list[Post]:
    """What players post: every posted drawing once, in a seeded shuffle, `per_player`
    consecutive ones by each simulated player (ids unique to the run)."""
    items = [(word, json.loads(line)["drawing"]) for word, rows in posted.items() for line in rows]
    random.Random(seed).shuffle(items)
    return [
        Post(f"bench-{run}-p{i // per_player:03d}", word, drawing)
        for i, (word, drawing) in enumerate(items)
    ]


def recognition_body(post: Post, player_id: str | None = None) -> dict[str, Any]:
    """A game client's `POST /v1/recognitions` body: the strokes, the prompt and consent.
    `player_id`: the id the product issued the simulated player (else their name)."""
    return {
        "drawing": post.drawing,
        "word": post.word,
        "player_id": player_id or post.player,
        "consent": {"store": True, "train": True, "version": "bench"},
    }


def old_rows(total: int, count: int = OLD_ROWS_PER_WORD) -> range:
    """The rows of a .npy file of `total` rows that are old words' test drawings: its last
    `count`, which the shipped sample leaves out."""
    return range(max(0, total - count), total)


# --------------------------------------------------------------------------- files


def read_lines(quickdraw: Path, words: Sequence[str]) -> dict[str, list[str]]:
    """Each word's simplified ndjson lines (non-blank), in file order."""
    out = {}
    for word in words:
        path = quickdraw / "simplified" / f"{word}.ndjson"
        out[word] = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def write_ndjson(path: Path, lines: dict[str, list[str]]) -> Path:
    path.write_text("".join(f"{line}\n" for rows in lines.values() for line in rows), "utf-8")
    return path


def write_old_word_rows(quickdraw: Path, folder: Path) -> dict[str, int]:
    """`folder/<word>.npy` with each bitmap word's test rows (`doodle eval` names the word
    after the file); word -> rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for word in sorted(bitmap_manifest(quickdraw)):
        bitmaps = read_bitmaps(quickdraw / "bitmaps", word)
        rows = old_rows(len(bitmaps))
        if len(rows):
            np.save(folder / f"{word}.npy", bitmaps[rows.start : rows.stop].reshape(len(rows), -1))
            counts[word] = len(rows)
    return counts
