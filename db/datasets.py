"""Datasets for training and evaluation, read straight from the recognitions table.

- Eligible: a doodle with an effective label (`db.labels`) and a bitmap; a game doodle
  only while its consent to train is in force and its player is not erased.
- Golden (evaluation only): reviewed or imported drawings whose `is_golden` is true.
  Game doodles with only automatic labels are never golden. Training never sees golden
  drawings.
- Provisional (evaluation only): a word players drew that no dataset import has and that
  has fewer than `PROVISIONAL_MIN` golden drawings (a new word no reviewer confirmed yet)
  holds back some of its prompt-labelled doodles by the same hash split, at least
  `PROVISIONAL_MIN` of them, as its provisional test set. Once reviewers gave the word
  that many golden drawings they replace the provisional ones, which go back to
  training. A golden fraction of 0 holds nothing back.

One query per call; bitmaps come back as one (N, 28, 28) uint8 array.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from db.labels import effective_label_query, may_train, trainable_word, with_consent_joins
from db.models import (
    InputFormat,
    Label,
    LabelSource,
    Recognition,
    RecognitionOrigin,
    RecognitionStatus,
)

SIDE = 28
BITMAP_BYTES = SIDE * SIDE
# Only these sources can make a drawing golden: someone (or the dataset) vouches for it.
GOLDEN_SOURCES = frozenset({LabelSource.reviewer, LabelSource.import_})
# A new word's test drawings are golden once it has this many; until then players'
# doodles labelled by their prompt (accepted by relabel) fill its provisional test set, at
# least this many of them: a word's top-1 on fewer drawings says too little. Words the
# imported dataset has are tested on their golden drawings only: their prompt labels were
# accepted because production agreed, a test set production would be right on by choice.
PROVISIONAL_SOURCES = frozenset({LabelSource.prompt})
PROVISIONAL_MIN = 5


def _unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) from sha256 of the parts."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_golden(identity: uuid.UUID | str, word: str, fraction: float) -> bool:
    """Deterministic per-word split: about `fraction` of each word's drawings are golden,
    the same ones on every machine and every run."""
    return _unit_hash(word, str(identity)) < fraction


def drawing_identity(bitmap: bytes) -> str:
    """What the golden split hashes: the drawing itself, not its row, so the same drawing
    imported or posted twice always lands on the same side (never in both)."""
    return hashlib.sha256(bitmap).hexdigest()


@dataclass(frozen=True)
class Examples:
    """Drawings with their labels: row i of `bitmaps` is `ids[i]`, labelled `labels[i]`
    by `sources[i]` (a LabelSource value)."""

    ids: list[uuid.UUID]
    bitmaps: np.ndarray  # (N, 28, 28) uint8, white ink on black
    labels: list[str]
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.bitmaps.shape != (n, SIDE, SIDE) or len(self.labels) != n:
            raise ValueError(
                f"{n} ids, {len(self.labels)} labels, bitmaps {self.bitmaps.shape}: mismatch"
            )
        if self.sources and len(self.sources) != n:
            raise ValueError(f"{n} ids but {len(self.sources)} sources")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> Examples:
        return cls([], np.zeros((0, SIDE, SIDE), np.uint8), [], [])

    @property
    def words(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))

    def take(self, indices: Sequence[int] | np.ndarray) -> Examples:
        """The examples at `indices`, in that order."""
        idx = np.asarray(indices, dtype=np.intp)
        return Examples(
            ids=[self.ids[i] for i in idx],
            bitmaps=self.bitmaps[idx],
            labels=[self.labels[i] for i in idx],
            sources=[self.sources[i] for i in idx] if self.sources else [],
        )

    @classmethod
    def concat(cls, parts: Iterable[Examples]) -> Examples:
        """All examples of `parts`, in order (sources kept only if every part has them)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keep_sources = all(p.sources for p in parts)
        return cls(
            ids=[i for p in parts for i in p.ids],
            bitmaps=np.concatenate([p.bitmaps for p in parts]),
            labels=[w for p in parts for w in p.labels],
            sources=[x for p in parts for x in p.sources] if keep_sources else [],
        )

    def manifest(self) -> dict[str, Any]:
        """What a model version was trained or evaluated on: counts per word and label
        source, and a digest of the sorted ids (equal digests = the same drawings)."""
        per_word: dict[str, dict[str, int]] = {}
        sources = self.sources or ["unknown"] * len(self)
        for (word, source), n in sorted(Counter(zip(self.labels, sources, strict=True)).items()):
            per_word.setdefault(word, {})[source] = n
        ids_digest = hashlib.sha256("\n".join(sorted(str(i) for i in self.ids)).encode())
        return {
            "count": len(self),
            "words": {w: {"count": sum(c.values()), "sources": c} for w, c in per_word.items()},
            "sources": dict(sorted(Counter(sources).items())),
            "ids_sha256": ids_digest.hexdigest(),
        }


def eligible_rows(s: Session, words: set[str] | None) -> list[tuple[uuid.UUID, str, str, bytes]]:
    """(id, label, source, bitmap) of every eligible drawing, ordered by id."""
    eff = effective_label_query().subquery("eff")
    stmt = (
        with_consent_joins(
            select(Recognition.id, eff.c.label, eff.c.source, Recognition.bitmap).join(
                eff, eff.c.recognition_id == Recognition.id
            )
        )
        .where(
            Recognition.status == RecognitionStatus.done,
            Recognition.bitmap.is_not(None),
            may_train(),
            trainable_word(eff.c.label, eff.c.source),
        )
        .order_by(Recognition.id)
    )
    if words is not None:
        stmt = stmt.where(eff.c.label.in_(sorted(words)))
    return [(r[0], r[1], r[2], r[3]) for r in s.execute(stmt)]


def build_examples(rows: Sequence[tuple[uuid.UUID, str, str, bytes]]) -> Examples:
    """Examples from (id, label, source, bitmap) rows, as the queries here return them."""
    if not rows:
        return Examples.empty()
    blob = b"".join(r[3] for r in rows)
    if len(blob) != BITMAP_BYTES * len(rows):
        bad = next(r[0] for r in rows if len(r[3]) != BITMAP_BYTES)
        raise ValueError(f"recognition {bad}: bitmap is not {BITMAP_BYTES} bytes")
    return Examples(
        ids=[r[0] for r in rows],
        bitmaps=np.frombuffer(blob, dtype=np.uint8).reshape(len(rows), SIDE, SIDE),
        labels=[r[1] for r in rows],
        sources=[LabelSource(r[2]).value for r in rows],
    )


def _golden(row: tuple[uuid.UUID, str, str, bytes], fraction: float) -> bool:
    return LabelSource(row[2]) in GOLDEN_SOURCES and is_golden(
        drawing_identity(row[3]), row[1], fraction
    )


def _held_out(rows: list[tuple[uuid.UUID, str, str, bytes]], fraction: float) -> list[bool]:
    """Per row: is it a test drawing (golden, or in its word's provisional set)?"""
    held = [_golden(r, fraction) for r in rows]
    if fraction <= 0:
        return held
    golden_per_word = Counter(r[1] for r, g in zip(rows, held, strict=True) if g)
    imported = {r[1] for r in rows if LabelSource(r[2]) is LabelSource.import_}
    candidates: dict[str, list[tuple[float, int]]] = {}
    for i, (_, word, source, bitmap) in enumerate(rows):
        if (
            LabelSource(source) in PROVISIONAL_SOURCES
            and word not in imported
            and golden_per_word[word] < PROVISIONAL_MIN
        ):
            unit = _unit_hash(word, drawing_identity(bitmap))  # is_golden's number
            candidates.setdefault(word, []).append((unit, i))
    for ranked in candidates.values():
        # The lowest hashes first, by distinct value: a drawing posted twice is held out
        # twice or not at all, never on both sides.
        lowest = sorted({unit for unit, _ in ranked})[:PROVISIONAL_MIN]
        for unit, i in ranked:
            held[i] = unit < fraction or unit <= lowest[-1]
    return held


@dataclass(frozen=True)
class Split:
    """Training and test drawings, disjoint; the test set's `sources` say which drawings
    are golden (reviewer, import) and which provisional (prompt)."""

    training: Examples
    test: Examples

    def provisional_counts(self) -> Counter[str]:
        """Per word: how many of its test drawings are provisional."""
        return Counter(self.provisional().labels)

    def provisional(self) -> Examples:
        """The test drawings that are provisional (players' doodles of new words)."""
        return self.test.take(
            [i for i, s in enumerate(self.test.sources) if LabelSource(s) in PROVISIONAL_SOURCES]
        )


def split_examples(s: Session, *, golden_fraction: float, words: set[str] | None = None) -> Split:
    """Every eligible drawing (of `words` only, if given), training or test, by id."""
    rows = eligible_rows(s, words)
    held = _held_out(rows, golden_fraction)
    return Split(
        training=build_examples([r for r, h in zip(rows, held, strict=True) if not h]),
        test=build_examples([r for r, h in zip(rows, held, strict=True) if h]),
    )


def training_examples(
    s: Session, *, golden_fraction: float, words: set[str] | None = None
) -> Examples:
    """Every eligible drawing that is not a test drawing (golden or provisional), by id."""
    return split_examples(s, golden_fraction=golden_fraction, words=words).training


def evaluation_examples(
    s: Session, *, golden_fraction: float, words: set[str] | None = None
) -> Examples:
    """What models are scored on: the golden drawings and the provisional test sets, by id."""
    return split_examples(s, golden_fraction=golden_fraction, words=words).test


def golden_examples(
    s: Session, *, golden_fraction: float, words: set[str] | None = None
) -> Examples:
    """The golden set: eligible reviewed or imported drawings with `is_golden`, by id."""
    rows = eligible_rows(s, words)
    return build_examples([r for r in rows if _golden(r, golden_fraction)])


def expired_game_doodles(s: Session, before: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Up to `limit` game doodles (any status) created before `before`, oldest first:
    what the retention removes. Imported dataset drawings are not players' data."""
    return list(
        s.scalars(
            select(Recognition.id)
            .where(Recognition.origin == RecognitionOrigin.game, Recognition.created_at < before)
            .order_by(Recognition.created_at, Recognition.id)
            .limit(limit)
        )
    )


def replay_sample(examples: Examples, per_word: int, seed: int) -> Examples:
    """Up to `per_word` examples of each word, chosen by a seeded hash of each id: the same
    sample whatever the input order, and adding drawings changes it only a little.
    Returned in the input's order."""
    if per_word <= 0:
        return Examples.empty()
    by_word: dict[str, list[tuple[float, int]]] = {}
    for i, (rid, word) in enumerate(zip(examples.ids, examples.labels, strict=True)):
        by_word.setdefault(word, []).append((_unit_hash(str(seed), str(rid)), i))
    chosen = sorted(i for ranked in by_word.values() for _, i in sorted(ranked)[:per_word])
    return examples.take(chosen)


# -- imports of public datasets ----------------------------------------------------------

# Imported drawings get ids derived from their external id: the same drawing has the same
# id (and so the same golden / training side) on every machine that imports it.
_RECOGNITIONS = cast(Table, Recognition.__table__)
_LABELS = cast(Table, Label.__table__)
IMPORT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://quickdraw.withgoogle.com/data")


def import_id(external_id: str) -> uuid.UUID:
    return uuid.uuid5(IMPORT_NAMESPACE, external_id)


@dataclass(frozen=True)
class ImportedDrawing:
    external_id: str  # e.g. quickdraw:<key_id>
    word: str
    bitmap: bytes  # 28x28 uint8, row-major
    input_format: InputFormat


def add_imports(s: Session, drawings: Sequence[ImportedDrawing], actor: str) -> list[str]:
    """Record dataset drawings as done recognitions (origin import) with an `import` label
    each, in two statements. Drawings whose external id is already there are skipped
    (ON CONFLICT DO NOTHING). Returns the words of the drawings actually added."""
    if not drawings:
        return []
    for d in drawings:
        if len(d.bitmap) != BITMAP_BYTES:
            raise ValueError(f"{d.external_id}: bitmap is {len(d.bitmap)} bytes, not 784")
    now = dt.datetime.now(dt.UTC)
    values = [
        {
            "id": import_id(d.external_id),
            "origin": RecognitionOrigin.import_,
            "external_id": d.external_id,
            "word": d.word,
            "input_format": d.input_format,
            "status": RecognitionStatus.done,
            "attempts": 0,
            "consent_store": False,
            "consent_train": False,
            "bitmap": d.bitmap,
            "finished_at": now,
        }
        for d in drawings
    ]
    # No conflict target: a drawing seen before conflicts on external_id and on id alike.
    # A list of parameters runs as few multi-row INSERTs (insertmanyvalues) of one cached
    # statement; RETURNING gives the rows actually added.
    conn = s.connection()
    added = conn.execute(
        pg_insert(_RECOGNITIONS)
        .on_conflict_do_nothing()
        .returning(_RECOGNITIONS.c.id, _RECOGNITIONS.c.word),
        values,
    ).all()
    if added:
        conn.execute(
            pg_insert(_LABELS),
            [
                {
                    "recognition_id": rid,
                    "label": word,
                    "source": LabelSource.import_,
                    "actor": actor,
                }
                for rid, word in added
            ],
        )
    return [str(word) for _, word in added]
