"""Labelling doodles: a reviewer's decision about one doodle or many (the admin API) and
the relabel flow's pass.

Both record labels with their provenance; how labels rank is `db.labels`' business, the
review queue `db.reviews`'. The relabel pass judges doodles with the model, which this
module never imports: the flow hands its judgement in as a function.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from db import bulk_reviews, doodle_listing, labels, review_listing, reviews
from db.labels import Candidate
from db.models import AuditLog, LabelSource
from db.review_listing import ReviewItem
from services import vocabulary
from services.errors import ReviewRefused, UnknownDoodle


def decide_review(
    sessions: sessionmaker[Session],
    recognition_id: uuid.UUID,
    label: str | None,
    *,
    actor: str,
    new_word: bool = False,
) -> ReviewItem:
    """A reviewer labels the doodle (`label`) or discards it (None); returns its review.

    The label must be a known word (services.vocabulary.admit), or `new_word` proposes it.
    Raises labels.InvalidLabel (not a word), UnknownDoodle, ReviewRefused when the
    doodle's state forbids the decision (no consent to train, not finished, discarding
    what a reviewer labelled), or vocabulary.WordRefused (unknown or rejected word).
    """
    word = None if label is None else labels.normalize_word(label)
    with sessions.begin() as s:
        try:
            if word is not None:
                reviews.review_doodle(s, recognition_id, word, actor=actor)
                vocabulary.admit(s, [word], new_word=new_word, actor=actor)
            else:
                reviews.discard_doodle(s, recognition_id, actor=actor)
        except reviews.UnknownRecognition as exc:
            raise UnknownDoodle(str(exc)) from None
        except reviews.ReviewConflict as exc:
            raise ReviewRefused(str(exc)) from None
        item = review_listing.get_review(s, recognition_id)
        assert item is not None  # both decisions leave a review row
        return item


class BulkAction(enum.StrEnum):
    label = "label"  # the same reviewer label on every doodle
    confirm = "confirm"  # each doodle's current label (effective, else its prompt word)
    discard = "discard"


@dataclass(frozen=True)
class Decided:
    id: uuid.UUID
    label: str | None  # the reviewer label recorded; None for a discard


class DecisionsRefused(ReviewRefused):
    """Some of the doodles cannot take the decision; nothing was decided. `unknown`: ids
    the grid does not list (no such doodle, not kept, not finished, player erased or
    being erased); `refused`: id -> why the decision does not fit that doodle."""

    def __init__(self, unknown: list[uuid.UUID], refused: dict[uuid.UUID, str]) -> None:
        self.unknown = unknown
        self.refused = refused
        parts = []
        if unknown:
            parts.append(f"{len(unknown)} unknown or not listed")
        if refused:
            parts.append(f"{len(refused)} refused")
        super().__init__("nothing was decided: " + ", ".join(parts))


def decide_many(
    sessions: sessionmaker[Session],
    ids: Sequence[uuid.UUID],
    action: BulkAction | str,
    label: str | None = None,
    *,
    actor: str,
    new_word: bool = False,
) -> list[Decided]:
    """One reviewer decision about many doodles of the admin's grid, all or nothing, in
    one transaction: each doodle gets what `decide_review` would give it (a reviewer
    label or a discard, its review resolved, an audit row with `actor` and the time; set-
    wise, db.bulk_reviews), and one more audit row (`review.bulk`) records the request.

    `label` is required for `label` and ignored otherwise; `confirm` records each
    doodle's effective label, or its prompt word when it has none. Repeated ids count
    once. Raises DecisionsRefused naming every id that cannot take the decision, then
    vocabulary.WordRefused when a label is not a known word (`new_word` proposes the
    unknown ones: services.vocabulary.admit), labels.InvalidLabel when it is not a word.
    """
    action = BulkAction(action)
    wanted = list(dict.fromkeys(ids))
    word = None if action is not BulkAction.label else labels.normalize_word(label)
    with sessions.begin() as s:
        # Locked first, checked next: nothing can change the doodles in between.
        bulk_reviews.lock(s, wanted)
        listed = doodle_listing.listed_ids(s, wanted)
        unknown = [i for i in wanted if i not in listed]
        chosen = _labels_for(s, wanted, action, word)
        refused = {i: why for i, why in _refusals(s, wanted, action, chosen).items() if i in listed}
        if unknown or refused:
            raise DecisionsRefused(unknown, refused)
        decisions = {rid: None if action is BulkAction.discard else chosen[rid] for rid in wanted}
        words = {w for w in decisions.values() if w is not None}
        proposed = vocabulary.admit(s, words, new_word=new_word, actor=actor)
        bulk_reviews.decide(s, decisions, actor=actor)
        decided = [Decided(rid, label) for rid, label in decisions.items()]
        # Each doodle has its own audit row; this one says they were one request.
        s.add(
            AuditLog(
                actor=actor,
                action="review.bulk",
                subject=f"recognitions:{len(wanted)}",
                details={
                    "action": action.value,
                    "ids": [str(i) for i in wanted],
                    "label": word,
                    **({"proposed": proposed} if proposed else {}),
                },
            )
        )
    return decided


def _labels_for(
    s: Session, ids: list[uuid.UUID], action: BulkAction, word: str | None
) -> dict[uuid.UUID, str]:
    """The label each doodle gets (none for a discard, or when confirm finds nothing)."""
    if action is BulkAction.discard:
        return {}
    if action is BulkAction.label:
        assert word is not None
        return dict.fromkeys(ids, word)
    current = labels.effective_labels(s, ids)
    prompts = doodle_listing.prompt_words(s, ids)
    chosen = {i: current[i].label for i in ids if i in current}
    for i in ids:
        if i not in chosen and prompts.get(i):
            chosen[i] = prompts[i]
    # Normalised when a word; left as is otherwise, for `_refusals` to refuse.
    return {i: labels.normalize_word(w) if labels.is_word(w) else w for i, w in chosen.items()}


def _refusals(
    s: Session, ids: list[uuid.UUID], action: BulkAction, chosen: dict[uuid.UUID, str]
) -> dict[uuid.UUID, str]:
    """Why each doodle cannot take the decision (those that can are absent)."""
    if action is BulkAction.discard:
        return {
            rid: f"a reviewer labelled it {word!r}; label it again to change that"
            for rid, word in doodle_listing.reviewer_labels(s, ids).items()
        }
    refused = {rid: why for rid, why in doodle_listing.untrainable(s, ids).items()}
    for rid in ids:
        if rid not in chosen and rid not in refused:
            refused[rid] = "it has no label nor prompt word to confirm"
        elif rid not in refused and not labels.is_word(chosen[rid]):
            refused[rid] = f"{chosen[rid]!r} is not a word; label it instead"
    return refused


class Verdict(Protocol):
    """What the relabel flow makes of one doodle: a label, a reason to review, or neither."""

    @property
    def label(self) -> str | None: ...

    @property
    def review(self) -> str | None: ...


def relabel(
    sessions: sessionmaker[Session],
    judge: Callable[[Sequence[Candidate]], Sequence[Verdict]],
    *,
    actor: str,
    limit: int | None,
    batch: int,
) -> dict[str, int]:
    """Judge the doodles not decided about yet, about `batch` at a time (each prompt word's
    doodles in one chunk: a new word's are judged against each other), and record the verdicts:
    labels (source `prompt`) and review requests. Counts: seen, accepted, review, undecided.

    One transaction: a failed pass leaves no half-labelled batch behind.
    """
    counts: Counter[str] = Counter()
    with sessions.begin() as s:
        candidates = labels.relabel_candidates(s, limit=limit)
        for chunk in word_chunks(candidates, batch):
            verdicts = list(zip(chunk, judge(chunk), strict=True))
            accepted = [(c.id, v.label) for c, v in verdicts if v.label]
            queued = [(c.id, v.review) for c, v in verdicts if not v.label and v.review]
            # One statement each per chunk: one-row inserts were half of relabel's time.
            counts["accepted"] += labels.add_labels(s, accepted, LabelSource.prompt, actor)
            counts["review"] += reviews.queue_reviews(s, queued)
            counts["undecided"] += len(chunk) - len(accepted) - len(queued)
    counts["seen"] = len(candidates)
    return dict(counts)


def word_chunks(candidates: Sequence[Candidate], batch: int) -> list[list[Candidate]]:
    """The candidates grouped by prompt word, whole words packed into chunks of about
    `batch` (a word with more doodles than that is a chunk of its own)."""
    by_word: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_word.setdefault(candidate.word, []).append(candidate)
    chunks: list[list[Candidate]] = []
    current: list[Candidate] = []
    for group in by_word.values():
        if current and len(current) + len(group) > batch:
            chunks.append(current)
            current = []
        current.extend(group)
    if current:
        chunks.append(current)
    return chunks
