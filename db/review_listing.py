"""Reading reviews for the admin: pages of the queue, one doodle's review, the kept drawing.

Every function takes a Session and never commits. `list_reviews` pages with an opaque
keyset cursor: rows resolved or queued meanwhile neither repeat nor shift the pages.

Pending reviews come in the queue's order, where a reviewer's answer helps most
(`db.reviews.queue_order`): new words first (a prompt the production model does not
know), then disagreements (the model's guess is not the prompt), then the rest; within
each, the least confident guess first, then the oldest queued. Resolved reviews come
oldest queued first.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, select, true, tuple_
from sqlalchemy.orm import Session

from db.models import Label, LabelSource, Recognition, RecognitionStatus, Review, ReviewStatus
from db.reviews import (
    OTHER,
    PRIORITY_NAMES,
    SortKey,
    UnknownRecognition,
    queue_order,
    review_certainty,
    review_guess,
    review_priority,
)


class InvalidCursor(ValueError):
    """A pagination cursor `list_reviews` did not make."""


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
    priority: int = OTHER  # its group in the queue's order (db.reviews.review_priority)
    certainty: float = 0.0  # the model's confidence, 0 without a guess

    @property
    def priority_name(self) -> str:
        """Why it is where it is in the queue: new_word, disagreement or other."""
        return PRIORITY_NAMES[self.priority]

    @property
    def decision(self) -> str | None:
        """`label` or `discard` once a reviewer resolved it; None while pending."""
        if self.status is not ReviewStatus.resolved or self.resolved_by is None:
            return None
        return "label" if self.reviewer_label is not None else "discard"

    @property
    def cursor(self) -> str:
        """Where the next page starts, for `list_reviews(after=...)`: the sort keys of
        this item in its list's order."""
        keys: list[Any] = [self.created_at.isoformat(), self.review_id]
        if self.status is ReviewStatus.pending:
            keys = [self.priority, self.certainty, *keys]
        raw = json.dumps(keys).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class ReviewPage:
    items: list[ReviewItem]
    next_cursor: str | None  # None on the last page


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_cursor(cursor: str, status: ReviewStatus) -> tuple[Any, ...]:
    """The sort keys a cursor of this list holds: (priority, certainty, created_at, id)
    for pending reviews, (created_at, id) for resolved ones."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        keys = json.loads(raw)
        if not isinstance(keys, list):
            raise ValueError("bad cursor")
        if status is ReviewStatus.pending:
            priority, certainty, stamp, review_id = keys
            if (
                not _is_int(priority)
                or not isinstance(certainty, int | float)
                or (isinstance(certainty, bool))
            ):
                raise ValueError("bad cursor")
            head: tuple[Any, ...] = (priority, float(certainty))
        else:
            stamp, review_id = keys
            head = ()
        at = dt.datetime.fromisoformat(stamp)
        if at.tzinfo is None or not _is_int(review_id):
            raise ValueError("bad cursor")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor("not a cursor of this list") from None
    return (*head, at, review_id)


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
        review_priority(Recognition.__table__).label("priority"),
        review_certainty(Recognition.__table__).label("certainty"),
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
    """Reviews of one status, `limit` at a time: pending ones in the queue's order (see
    the module's doc), resolved ones oldest queued first (created_at, then id).

    Keyset pagination: pass the page's `next_cursor` as `after` for the next page; rows
    resolved (or queued) meanwhile neither repeat nor shift the pages (while production
    stays the same model: a promotion may move a word out of the new words). Raises
    InvalidCursor for a cursor this function did not make, ValueError for a bad status.
    """
    status = ReviewStatus(status)
    if limit < 1:
        raise ValueError("limit must be at least 1")
    # The page's review ids first, sorting the keys alone: sorted with the rest of the
    # row (the guesses, the drawing) a queue of 100,000 spilled to disk.
    keys: list[SortKey] = [Review.created_at, Review.id]
    ranked = select(Review.id.label("review_id")).select_from(Review)
    if status is ReviewStatus.pending:
        guess = review_guess()
        keys = queue_order(guess)
        ranked = ranked.join(guess, true())
    ranked = ranked.add_columns(*(k.label(f"k{i}") for i, k in enumerate(keys))).where(
        Review.status == status
    )
    if after is not None:
        ranked = ranked.where(tuple_(*keys) > tuple_(*_decode_cursor(after, status)))
    page = ranked.order_by(*keys).limit(limit + 1).subquery()
    stmt = (
        _review_query()
        .join(page, page.c.review_id == Review.id)
        .order_by(*(page.c[f"k{i}"] for i in range(len(keys))))
    )
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
