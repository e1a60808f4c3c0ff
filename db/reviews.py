"""The review queue and reviewers' decisions about doodles.

Every function takes a Session and never commits; the caller owns the transaction.

The relabel flow queues doodles it cannot decide about (`queue_reviews`); a reviewer
decides about them, or about any other finished doodle as a spot check: `review_doodle`
labels one, `discard_doodle` rejects one; either resolves the doodle's review row (one
per doodle). How a reviewer's decision ranks among the labels is `db.labels`' business.
Reading reviews (the admin's pages of the queue) is `db.review_listing`.

The queue's order (`queue_order`): reviewers look first where their answer helps most.

1. New words: the prompt is a word the production model does not know. Only people can
   say whether those drawings teach the new word; each one counts.
2. Disagreements: the model's guess is not the prompt (or it made none). Either the
   player drew something else, or the model is wrong: a reviewer settles it.
3. The rest (the model agrees with the prompt, or there is no prompt).

Within each group, the least confident guess first (no guess counts as 0), then the
oldest queued, then the review's id. The groups are decided against the production
model at the time of reading: after a promotion that learnt a word, its doodles move
from group 1 to 2 or 3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from db.labels import add_label, may_train, normalize_label, with_consent_joins
from db.models import (
    AuditLog,
    Consent,
    Label,
    LabelSource,
    ModelAlias,
    ModelVersion,
    Player,
    Recognition,
    RecognitionStatus,
    Review,
    ReviewStatus,
)
from db.registry import Alias

# The reason of the review row created when a reviewer looks at a doodle nobody queued.
SPOT_CHECK = "spot_check"


class UnknownRecognition(LookupError):
    """No recognition has this id."""


class ReviewConflict(ValueError):
    """The doodle is in a state that forbids this decision."""


class NotTrainable(ReviewConflict):
    """The doodle may not become training data (consent), so a reviewer may not label it."""


class NotReviewable(ReviewConflict):
    """The doodle is not a finished drawing with a bitmap: there is nothing to label."""


class AlreadyLabelled(ReviewConflict):
    """Discarding a doodle a reviewer already labelled: label it again instead."""


# -- the queue ------------------------------------------------------------------------


def queue_review(s: Session, recognition_id: uuid.UUID, reason: str) -> bool:
    """Put a doodle in the review queue; True if queued now, False if it already has a
    review (pending or resolved: one review per doodle)."""
    return queue_reviews(s, [(recognition_id, reason)]) == 1


def queue_reviews(s: Session, items: Iterable[tuple[uuid.UUID, str]]) -> int:
    """`queue_review` for many doodles in one statement; returns how many were queued."""
    rows = [{"recognition_id": rid, "reason": reason} for rid, reason in items]
    if not rows:
        return 0
    result = s.execute(
        insert(Review)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[Review.recognition_id])
        .returning(Review.id)
    )
    return len(result.all())


# The groups of the queue's order, most useful first.
NEW_WORD, DISAGREEMENT, OTHER = 0, 1, 2
PRIORITY_NAMES = {NEW_WORD: "new_word", DISAGREEMENT: "disagreement", OTHER: "other"}


def review_guess() -> Any:
    """The reviewed doodle's prompt and the model's guess, one index lookup per review (a
    LATERAL subquery; its LIMIT keeps the planner from turning it into a hash join that
    reads every recognition: 290 ms for 10,000 pending among 1,000,000 doodles)."""
    return (
        select(Recognition.word, Recognition.label, Recognition.confidence)
        .where(Recognition.id == Review.recognition_id)
        .limit(1)
        .lateral("guess")
    )


def review_priority(guess: Any) -> ColumnElement[int]:
    """The doodle's group in the queue (NEW_WORD, DISAGREEMENT, OTHER; see the module's
    doc), from its `review_guess()`."""
    production_classes = (
        select(ModelVersion.classes)
        .join(ModelAlias, ModelAlias.model_version_id == ModelVersion.id)
        .where(ModelAlias.name == Alias.PRODUCTION.value)
        .scalar_subquery()
    )
    word, label = guess.c.word, guess.c.label
    prompted = word.is_not(None)
    # No production model: no word is new (NULL IS FALSE is false).
    unknown = func.jsonb_exists(production_classes, word).is_(False)
    disagrees = or_(label.is_(None), label != word)
    return case(
        (and_(prompted, unknown), NEW_WORD),
        (and_(prompted, disagrees), DISAGREEMENT),
        else_=OTHER,
    )


def review_certainty(guess: Any) -> ColumnElement[float]:
    """The model's confidence in its guess; no guess counts as 0 (least certain)."""
    return func.coalesce(guess.c.confidence, 0.0)


# A key of an ORDER BY: an expression or a mapped column.
SortKey = ColumnElement[Any] | InstrumentedAttribute[Any]


def queue_order(guess: Any) -> list[SortKey]:
    """The queue's sort keys (reviews joined with their `review_guess()`), most useful
    first; the last two make it a total order, so keyset pages never repeat or skip."""
    return [review_priority(guess), review_certainty(guess), Review.created_at, Review.id]


def pending_reviews(s: Session, *, limit: int | None = None) -> list[Review]:
    """The review queue, in `queue_order`."""
    guess = review_guess()
    stmt = (
        select(Review)
        .join(guess, true())
        .where(Review.status == ReviewStatus.pending)
        .order_by(*queue_order(guess))
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(s.scalars(stmt))


# -- decisions ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    status: RecognitionStatus
    has_bitmap: bool
    trainable: bool
    why_not: str | None  # why it may not be trained on, when it may not


def _why_not_trainable(row: Row[Any]) -> str:
    if not row.consent_train:
        return "the player did not consent to training when they drew it"
    if row.erased_at is not None or row.consent_id is None:
        return "the player was erased (or their consent record is gone)"
    if row.withdrawn_at is not None or not row.train:
        return "the player withdrew their consent to training"
    return "its consent does not allow training"


def _lock_subject(s: Session, recognition_id: uuid.UUID) -> _Subject:
    """The doodle's state, its row locked so reviewers' decisions on it are serialised."""
    stmt = (
        with_consent_joins(
            select(
                Recognition.status,
                Recognition.bitmap.is_not(None).label("has_bitmap"),
                Recognition.consent_train,
                Consent.id.label("consent_id"),
                Consent.train,
                Consent.withdrawn_at,
                Player.erased_at,
                may_train().label("trainable"),
            )
        )
        .where(Recognition.id == recognition_id)
        .with_for_update(of=Recognition)
    )
    row = s.execute(stmt).first()
    if row is None:
        raise UnknownRecognition(f"no recognition {recognition_id}")
    return _Subject(
        status=RecognitionStatus(row.status),
        has_bitmap=bool(row.has_bitmap),
        trainable=bool(row.trainable),
        why_not=None if row.trainable else _why_not_trainable(row),
    )


def _review_before(s: Session, recognition_id: uuid.UUID) -> dict[str, Any]:
    """For the audit row: the doodle's review as it was before this decision."""
    row = s.execute(
        select(Review.status, Review.reason).where(Review.recognition_id == recognition_id)
    ).first()
    if row is None:
        return {"previous_status": None, "reason": SPOT_CHECK}
    return {"previous_status": ReviewStatus(row.status).value, "reason": row.reason}


def _resolve(s: Session, recognition_id: uuid.UUID, actor: str) -> int:
    """Mark the doodle's review resolved by `actor` now; create it (already resolved,
    reason `spot_check`) if nobody queued it. Returns the review's id."""
    now = func.now()
    stmt = (
        insert(Review)
        .values(
            recognition_id=recognition_id,
            reason=SPOT_CHECK,
            status=ReviewStatus.resolved,
            resolved_at=now,
            resolved_by=actor,
        )
        .on_conflict_do_update(
            index_elements=[Review.recognition_id],
            set_={"status": ReviewStatus.resolved, "resolved_at": now, "resolved_by": actor},
        )
        .returning(Review.id)
    )
    return int(s.execute(stmt).scalar_one())


def _audit(
    s: Session, *, actor: str, action: str, recognition_id: uuid.UUID, details: dict[str, Any]
) -> None:
    s.add(
        AuditLog(
            actor=actor,
            action=action,
            subject=f"recognition:{recognition_id}",
            details=details,
        )
    )
    s.flush()


def review_doodle(s: Session, recognition_id: uuid.UUID, label: str, *, actor: str) -> None:
    """A reviewer's decision: `label` is what the doodle shows. Records a `reviewer` label
    (it beats every other label) and resolves the doodle's review, creating one already
    resolved when nobody queued the doodle (a spot check): every reviewed doodle has a
    review row, so relabel never decides about it again. Writes an audit row.

    Labelling an already reviewed doodle again is allowed: the latest reviewer label wins.

    Raises InvalidLabel, UnknownRecognition, NotTrainable (no consent to train in force:
    a reviewer must not turn it into training data) or NotReviewable (not finished).
    """
    word = normalize_label(label)
    subject = _lock_subject(s, recognition_id)
    if not subject.trainable:
        raise NotTrainable(
            f"recognition {recognition_id} may not be used for training: {subject.why_not}; "
            "a reviewer must not turn it into training data"
        )
    if subject.status is not RecognitionStatus.done or not subject.has_bitmap:
        raise NotReviewable(
            f"recognition {recognition_id} is {subject.status.value} and has "
            f"{'a' if subject.has_bitmap else 'no'} bitmap: there is no drawing to label"
        )
    before = _review_before(s, recognition_id)
    add_label(s, recognition_id, word, LabelSource.reviewer, actor)
    review_id = _resolve(s, recognition_id, actor)
    _audit(
        s,
        actor=actor,
        action="review.label",
        recognition_id=recognition_id,
        details={"review_id": review_id, "label": word, **before},
    )


def discard_doodle(s: Session, recognition_id: uuid.UUID, *, actor: str) -> None:
    """A reviewer's decision that the doodle is of no use (no recognisable drawing, not
    the word, junk): resolves its review (creating one if nobody queued it) without a
    label. Relabel never picks it up again and, as only reviewer labels count once a
    reviewer has decided, it drops out of training and golden data. Writes an audit row.

    Raises UnknownRecognition, or AlreadyLabelled when a reviewer labelled it already
    (label it again to change the decision: the latest reviewer label wins).
    """
    _lock_subject(s, recognition_id)
    existing = s.execute(
        select(Label.label)
        .where(Label.recognition_id == recognition_id, Label.source == LabelSource.reviewer)
        .order_by(Label.created_at.desc(), Label.id.desc())
        .limit(1)
    ).scalar()
    if existing is not None:
        raise AlreadyLabelled(
            f"recognition {recognition_id} was labelled {existing!r} by a reviewer; "
            "label it again to change that"
        )
    before = _review_before(s, recognition_id)
    review_id = _resolve(s, recognition_id, actor)
    _audit(
        s,
        actor=actor,
        action="review.discard",
        recognition_id=recognition_id,
        details={"review_id": review_id, **before},
    )
