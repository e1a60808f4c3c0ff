"""The review queue and reviewers' decisions about doodles.

Every function takes a Session and never commits; the caller owns the transaction.

The relabel flow queues doodles it cannot decide about (`queue_reviews`); a reviewer
decides about them, or about any other finished doodle as a spot check: `review_doodle`
labels one, `discard_doodle` rejects one; either resolves the doodle's review row (one
per doodle). How a reviewer's decision ranks among the labels is `db.labels`' business.
`list_reviews` pages through the queue with an opaque keyset cursor.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.labels import add_label, may_train, normalize_label, with_consent_joins
from db.models import (
    AuditLog,
    Consent,
    Label,
    LabelSource,
    Player,
    Recognition,
    RecognitionStatus,
    Review,
    ReviewStatus,
)

# The reason of the review row created when a reviewer looks at a doodle nobody queued.
SPOT_CHECK = "spot_check"


class UnknownRecognition(LookupError):
    """No recognition has this id."""


class InvalidCursor(ValueError):
    """A pagination cursor `list_reviews` did not make."""


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


def pending_reviews(s: Session, *, limit: int | None = None) -> list[Review]:
    """The review queue, oldest first."""
    stmt = (
        select(Review)
        .where(Review.status == ReviewStatus.pending)
        .order_by(Review.created_at, Review.id)
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


# -- listing --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    """One review with what a reviewer needs to decide, and the decision once made."""

    review_id: int
    recognition_id: uuid.UUID
    word: str | None  # the prompt the player was shown
    prediction_label: str | None  # the model's guess when the doodle was recognised
    prediction_confidence: float | None
    prediction_top: list[dict[str, Any]] | None
    model_version_id: int | None
    reason: str
    status: ReviewStatus
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: str | None
    png_key: str | None  # the stored image, for doodles sent as PNG
    kept: bool  # the player consented to keeping the drawing (strokes or image)
    reviewer_label: str | None  # the latest reviewer label, if any

    @property
    def decision(self) -> str | None:
        """`label` or `discard` once a reviewer resolved it; None while pending."""
        if self.status is not ReviewStatus.resolved or self.resolved_by is None:
            return None
        return "label" if self.reviewer_label is not None else "discard"

    @property
    def cursor(self) -> str:
        """Where the next page starts, for `list_reviews(after=...)`."""
        raw = json.dumps([self.created_at.isoformat(), self.review_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class ReviewPage:
    items: list[ReviewItem]
    next_cursor: str | None  # None on the last page


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, review_id = json.loads(raw)
        at = dt.datetime.fromisoformat(stamp)
        if at.tzinfo is None or not isinstance(review_id, int) or isinstance(review_id, bool):
            raise ValueError("bad cursor")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor("not a cursor of this list") from None
    return at, review_id


def _review_query() -> Select:
    """One row per review, its columns named as ReviewItem's fields."""
    reviewer_label = (
        select(Label.label)
        .where(Label.recognition_id == Review.recognition_id, Label.source == LabelSource.reviewer)
        .order_by(Label.created_at.desc(), Label.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(
        Review.id.label("review_id"),
        Review.recognition_id,
        Recognition.word,
        Recognition.label.label("prediction_label"),
        Recognition.confidence.label("prediction_confidence"),
        Recognition.top.label("prediction_top"),
        Recognition.model_version_id,
        Review.reason,
        Review.status,
        Review.created_at,
        Review.resolved_at,
        Review.resolved_by,
        Recognition.png_key,
        reviewer_label.label("reviewer_label"),
        Recognition.consent_store.label("kept"),
    ).join(Recognition, Recognition.id == Review.recognition_id)


def _item(row: Row[Any]) -> ReviewItem:
    fields = dict(row._mapping)
    fields["status"] = ReviewStatus(fields["status"])
    fields["kept"] = bool(fields["kept"])
    return ReviewItem(**fields)


def list_reviews(
    s: Session,
    *,
    status: ReviewStatus | str = ReviewStatus.pending,
    limit: int = 50,
    after: str | None = None,
) -> ReviewPage:
    """Reviews of one status, oldest queued first (created_at, then id), `limit` at a time.

    Keyset pagination: pass the page's `next_cursor` as `after` for the next page; rows
    resolved (or queued) meanwhile neither repeat nor shift the pages. Raises
    InvalidCursor for a cursor this function did not make, ValueError for a bad status.
    """
    status = ReviewStatus(status)
    if limit < 1:
        raise ValueError("limit must be at least 1")
    stmt = (
        _review_query()
        .where(Review.status == status)
        .order_by(Review.created_at, Review.id)
        .limit(limit + 1)
    )
    if after is not None:
        at, review_id = _decode_cursor(after)
        stmt = stmt.where(tuple_(Review.created_at, Review.id) > tuple_(at, review_id))
    items = [_item(row) for row in s.execute(stmt)]
    more = len(items) > limit
    items = items[:limit]
    return ReviewPage(items, items[-1].cursor if more else None)


def get_review(s: Session, recognition_id: uuid.UUID) -> ReviewItem | None:
    """The review of one doodle, or None if it has none."""
    row = s.execute(_review_query().where(Review.recognition_id == recognition_id)).first()
    return None if row is None else _item(row)


@dataclass(frozen=True)
class KeptDrawing:
    """Where a kept doodle is: its object, or still its row while the object is pending."""

    strokes_key: str | None
    png_key: str | None
    payload: Any
    payload_png: bytes | None


def get_kept_drawing(s: Session, recognition_id: uuid.UUID) -> KeptDrawing | None:
    """The doodle, if its player let us keep it, for the reviewer to look at; None if not.
    Raises UnknownRecognition."""
    row = s.execute(
        select(
            Recognition.consent_store,
            Recognition.status,
            Recognition.strokes_key,
            Recognition.png_key,
            Recognition.payload,
            Recognition.payload_png,
        ).where(Recognition.id == recognition_id)
    ).first()
    if row is None:
        raise UnknownRecognition(f"no recognition {recognition_id}")
    if not row.consent_store or row.status is not RecognitionStatus.done:
        return None
    return KeptDrawing(row.strokes_key, row.png_key, row.payload, row.payload_png)
