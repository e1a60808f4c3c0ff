"""Training labels with provenance, the review queue, and who may be trained on.

Every function takes a Session and never commits; the caller owns the transaction::

    with factory.begin() as s:
        for c in relabel_candidates(s, limit=1000):
            add_label(s, c.id, c.word, LabelSource.prompt, actor="flow:relabel")

The precedence of labels (`effective_labels`): a `reviewer` label beats everything; an
`import` label (the dataset's own word, only on imported drawings) is ground truth; the
automatic ones (`prompt`, `model`) come last, as one tier. Within a tier the latest wins.

Reviewers decide about doodles the relabel flow queued (or any other, as a spot check):
`review_doodle` labels one, `discard_doodle` rejects one; either resolves the doodle's
review row. Once a reviewer has decided, only reviewer labels count for that doodle.
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

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from db.models import (
    AuditLog,
    Consent,
    Label,
    LabelSource,
    Player,
    Recognition,
    RecognitionOrigin,
    RecognitionStatus,
    Review,
    ReviewStatus,
)

AUTOMATIC = (LabelSource.prompt, LabelSource.model)

# Higher wins; prompt and model share a tier (the latest automatic decision stands).
SOURCE_RANK = {
    LabelSource.reviewer: 3,
    LabelSource.import_: 2,
    LabelSource.model: 1,
    LabelSource.prompt: 1,
}


@dataclass(frozen=True)
class Candidate:
    """A collected doodle the relabel flow has not decided about yet."""

    id: uuid.UUID
    word: str  # the prompt the player was shown
    bitmap: bytes  # 28x28 uint8, row-major (np.frombuffer(b, np.uint8).reshape(28, 28))


@dataclass(frozen=True)
class EffectiveLabel:
    label: str
    source: LabelSource


def trainable_game_doodle() -> ColumnElement[bool]:
    """SQL condition on `recognitions` joined (outer) with `consents` and `players`: a
    game doodle whose snapshot allows training, whose consent row is still in force
    (not withdrawn; an erased player's consents are deleted, which nulls consent_id) and
    whose player is not erased.

    Use with `.outerjoin(Consent, Consent.id == Recognition.consent_id)
    .outerjoin(Player, Player.id == Consent.player_id)`.
    """
    return and_(
        Recognition.origin == RecognitionOrigin.game,
        Recognition.consent_train.is_(True),
        Consent.id.is_not(None),
        Consent.train.is_(True),
        Consent.withdrawn_at.is_(None),
        Player.id.is_not(None),
        Player.erased_at.is_(None),
    )


def may_train() -> ColumnElement[bool]:
    """Imports always; game doodles per `trainable_game_doodle` (same joins)."""
    return or_(Recognition.origin == RecognitionOrigin.import_, trainable_game_doodle())


def with_consent_joins(stmt: Select) -> Select:
    """`stmt` (selecting from recognitions) outer-joined with what `may_train` looks at."""
    return stmt.outerjoin(Consent, Consent.id == Recognition.consent_id).outerjoin(
        Player, Player.id == Consent.player_id
    )


def decided_by_reviewer() -> ColumnElement[bool]:
    """SQL condition on `reviews`: a reviewer resolved it (`review_doodle` labelled it or
    `discard_doodle` discarded it). Resolved rows without `resolved_by` are not decisions."""
    return and_(Review.status == ReviewStatus.resolved, Review.resolved_by.is_not(None))


def _has_label(*sources: LabelSource) -> ColumnElement[bool]:
    return exists().where(Label.recognition_id == Recognition.id, Label.source.in_(sources))


def relabel_candidates(s: Session, *, limit: int | None = None) -> list[Candidate]:
    """Game doodles done, with a bitmap and a prompt word, that may be trained on and that
    nobody has decided about yet: no reviewer label, no pending review, no review a
    reviewer resolved (labelled or discarded, see `review_doodle`), no automatic label
    (so relabelling is incremental). Oldest first.

    Doodles without a prompt word are left out: there is no weak label to check.
    """
    stmt = (
        with_consent_joins(select(Recognition.id, Recognition.word, Recognition.bitmap))
        .where(
            Recognition.status == RecognitionStatus.done,
            Recognition.bitmap.is_not(None),
            Recognition.word.is_not(None),
            trainable_game_doodle(),
            ~_has_label(LabelSource.reviewer, *AUTOMATIC),
            ~exists().where(
                Review.recognition_id == Recognition.id,
                or_(Review.status == ReviewStatus.pending, decided_by_reviewer()),
            ),
        )
        .order_by(Recognition.created_at, Recognition.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Candidate(id=i, word=w, bitmap=b) for i, w, b in s.execute(stmt)]


def add_label(
    s: Session, recognition_id: uuid.UUID, label: str, source: LabelSource, actor: str
) -> None:
    """Record one label with its provenance."""
    add_labels(s, [(recognition_id, label)], source, actor)


def add_labels(
    s: Session,
    items: Iterable[tuple[uuid.UUID, str]],
    source: LabelSource,
    actor: str,
) -> int:
    """Record many labels of one source in one statement; returns how many."""
    rows = [
        {"recognition_id": rid, "label": label, "source": source, "actor": actor}
        for rid, label in items
    ]
    if rows:
        s.execute(insert(Label), rows)
    return len(rows)


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


def rank_of_source() -> ColumnElement[int]:
    """SQL: the precedence of `labels.source` (see SOURCE_RANK)."""
    return case(
        *((Label.source == source, rank) for source, rank in SOURCE_RANK.items()),
        else_=0,
    )


def effective_label_query() -> Select:
    """SQL (recognition_id, label, source): each labelled doodle's winning label, by
    precedence, then latest within the tier. Join it as a subquery.

    Once a reviewer has resolved a doodle's review only `reviewer` labels count: a doodle
    a reviewer discarded (resolved, no reviewer label) has no effective label, whatever
    the flows or the dataset said about it, so it is never trained or evaluated on.
    """
    return (
        select(Label.recognition_id, Label.label, Label.source)
        .where(
            or_(
                Label.source == LabelSource.reviewer,
                ~exists().where(
                    Review.recognition_id == Label.recognition_id, decided_by_reviewer()
                ),
            )
        )
        .ext(distinct_on(Label.recognition_id))
        .order_by(
            Label.recognition_id,
            rank_of_source().desc(),
            Label.created_at.desc(),
            Label.id.desc(),
        )
    )


def effective_labels(
    s: Session, recognition_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, EffectiveLabel]:
    """The winning label of each given doodle (of every labelled doodle when None);
    doodles without labels are absent."""
    stmt = effective_label_query()
    if recognition_ids is not None:
        ids = list(recognition_ids)
        if not ids:
            return {}
        stmt = stmt.where(Label.recognition_id.in_(ids))
    return {rid: EffectiveLabel(label, source) for rid, label, source in s.execute(stmt)}


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


# -- reviewers ------------------------------------------------------------------------

MAX_LABEL_LENGTH = 64
# The reason of the review row created when a reviewer looks at a doodle nobody queued.
SPOT_CHECK = "spot_check"


class UnknownRecognition(LookupError):
    """No recognition has this id."""


class InvalidLabel(ValueError):
    """Not a usable label: empty, too long, or not a string."""


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


def normalize_label(label: object) -> str:
    """A reviewer's label as stored: stripped and lower-cased, like the prompt words."""
    if (
        not isinstance(label, str)
        or not label.strip()
        or len(label.strip()) > MAX_LABEL_LENGTH
        or not label.strip().isprintable()
    ):
        raise InvalidLabel(
            f"label must be a non-empty word of at most {MAX_LABEL_LENGTH} printable characters"
        )
    return label.strip().lower()


@dataclass(frozen=True)
class _Subject:
    status: RecognitionStatus
    has_bitmap: bool
    trainable: bool
    why_not: str | None  # why it may not be trained on, when it may not


def _lock_subject(s: Session, recognition_id: uuid.UUID) -> _Subject:
    """The doodle's state, its row locked so reviewers' decisions on it are serialised."""
    stmt = (
        with_consent_joins(
            select(
                Recognition.origin,
                Recognition.status,
                Recognition.bitmap.is_not(None),
                Recognition.consent_train,
                Consent.id,
                Consent.train,
                Consent.withdrawn_at,
                Player.erased_at,
                may_train(),
            )
        )
        .where(Recognition.id == recognition_id)
        .with_for_update(of=Recognition)
    )
    row = s.execute(stmt).first()
    if row is None:
        raise UnknownRecognition(f"no recognition {recognition_id}")
    _origin, status, has_bitmap, consent_train, consent_id, train, withdrawn, erased, ok = row
    why_not = None
    if not ok:
        if not consent_train:
            why_not = "the player did not consent to training when they drew it"
        elif erased is not None or consent_id is None:
            why_not = "the player was erased (or their consent record is gone)"
        elif withdrawn is not None or not train:
            why_not = "the player withdrew their consent to training"
        else:
            why_not = "its consent does not allow training"
    return _Subject(RecognitionStatus(status), bool(has_bitmap), bool(ok), why_not)


def _review_state(s: Session, recognition_id: uuid.UUID) -> tuple[int, str, str] | None:
    """(id, status, reason) of the doodle's review, if it has one."""
    row = s.execute(
        select(Review.id, Review.status, Review.reason).where(
            Review.recognition_id == recognition_id
        )
    ).first()
    return None if row is None else (row[0], ReviewStatus(row[1]).value, row[2])


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
    before = _review_state(s, recognition_id)
    add_label(s, recognition_id, word, LabelSource.reviewer, actor)
    review_id = _resolve(s, recognition_id, actor)
    _audit(
        s,
        actor=actor,
        action="review.label",
        recognition_id=recognition_id,
        details={
            "review_id": review_id,
            "label": word,
            "previous_status": None if before is None else before[1],
            "reason": SPOT_CHECK if before is None else before[2],
        },
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
    before = _review_state(s, recognition_id)
    review_id = _resolve(s, recognition_id, actor)
    _audit(
        s,
        actor=actor,
        action="review.discard",
        recognition_id=recognition_id,
        details={
            "review_id": review_id,
            "previous_status": None if before is None else before[1],
            "reason": SPOT_CHECK if before is None else before[2],
        },
    )


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
    reviewer_label = (
        select(Label.label)
        .where(Label.recognition_id == Review.recognition_id, Label.source == LabelSource.reviewer)
        .order_by(Label.created_at.desc(), Label.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(
        Review.id,
        Review.recognition_id,
        Recognition.word,
        Recognition.label,
        Recognition.confidence,
        Recognition.top,
        Recognition.model_version_id,
        Review.reason,
        Review.status,
        Review.created_at,
        Review.resolved_at,
        Review.resolved_by,
        Recognition.png_key,
        reviewer_label,
        Recognition.consent_store,
    ).join(Recognition, Recognition.id == Review.recognition_id)


def _item(row: Any) -> ReviewItem:
    return ReviewItem(
        review_id=row[0],
        recognition_id=row[1],
        word=row[2],
        prediction_label=row[3],
        prediction_confidence=row[4],
        prediction_top=row[5],
        model_version_id=row[6],
        reason=row[7],
        status=ReviewStatus(row[8]),
        created_at=row[9],
        resolved_at=row[10],
        resolved_by=row[11],
        png_key=row[12],
        reviewer_label=row[13],
        kept=bool(row[14]),
    )


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
    """The doodle, if its player let us keep it; None if not. Raises UnknownRecognition."""
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
