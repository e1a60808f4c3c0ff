"""Labelling doodles: a reviewer's decision (the admin API) and the relabel flow's pass.

Both record labels with their provenance; how labels rank is `db.labels`' business, the
review queue `db.reviews`'. The relabel pass judges doodles with the model, which this
module never imports: the flow hands its judgement in as a function.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from db import labels, review_listing, reviews
from db.labels import Candidate
from db.models import LabelSource
from db.review_listing import ReviewItem
from services.errors import ReviewRefused, UnknownDoodle


def decide_review(
    sessions: sessionmaker[Session], recognition_id: uuid.UUID, label: str | None, *, actor: str
) -> ReviewItem:
    """A reviewer labels the doodle (`label`) or discards it (None); returns its review.

    Raises UnknownDoodle, or ReviewRefused when the doodle's state forbids the decision
    (no consent to train, not finished, discarding what a reviewer labelled).
    """
    with sessions.begin() as s:
        try:
            if label is not None:
                reviews.review_doodle(s, recognition_id, label, actor=actor)
            else:
                reviews.discard_doodle(s, recognition_id, actor=actor)
        except reviews.UnknownRecognition as exc:
            raise UnknownDoodle(str(exc)) from None
        except reviews.ReviewConflict as exc:
            raise ReviewRefused(str(exc)) from None
        item = review_listing.get_review(s, recognition_id)
        assert item is not None  # both decisions leave a review row
        return item


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
    """Judge the doodles not decided about yet, `batch` at a time, and record the verdicts:
    labels (source `prompt`) and review requests. Counts: seen, accepted, review, undecided.

    One transaction: a failed pass leaves no half-labelled batch behind.
    """
    counts: Counter[str] = Counter()
    with sessions.begin() as s:
        candidates = labels.relabel_candidates(s, limit=limit)
        for start in range(0, len(candidates), batch):
            chunk = candidates[start : start + batch]
            verdicts = list(zip(chunk, judge(chunk), strict=True))
            accepted = [(c.id, v.label) for c, v in verdicts if v.label]
            queued = [(c.id, v.review) for c, v in verdicts if not v.label and v.review]
            # One statement each per chunk: one-row inserts were half of relabel's time.
            counts["accepted"] += labels.add_labels(s, accepted, LabelSource.prompt, actor)
            counts["review"] += reviews.queue_reviews(s, queued)
            counts["undecided"] += len(chunk) - len(accepted) - len(queued)
    counts["seen"] = len(candidates)
    return dict(counts)
