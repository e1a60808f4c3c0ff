"""Browsing every collected doodle (the admin's grid): filters and keyset pages.

Listed are the game doodles whose player let us keep them (`consent_store` when they
arrived) and that were recognised (`done`); never one of a player who is erased or whose
erasure is pending: an erasure request hides the player's doodles at once, before the
workers have removed them.

Newest first (created_at, then id, descending). Pages are keyset pages behind an opaque
cursor: doodles arriving meanwhile land before the first page and never shift or repeat
the ones after it. Every filter walks an index of migration 20261126_0006 (partial on the
listable rows), so the first and a deep page cost the same.

Every function takes a Session and never commits. The last ones tell bulk decisions
(services.labels.decide_many) which doodles can take them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, exists, or_, select, text, true, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session, aliased

from db.labels import decided_by_reviewer, may_train, rank_of_source, with_consent_joins
from db.models import Erasure, Label, LabelSource, Player, Recognition, Review, ReviewStatus

# The rows the listing indexes cover; spelled as literal SQL so that the planner can
# match the partial indexes whatever the driver does with bound parameters.
LISTABLE_SQL = (
    "recognitions.origin = 'game' AND recognitions.consent_store AND recognitions.status = 'done'"
)
MAX_LIMIT = 200


class ReviewState(enum.StrEnum):
    """Where a doodle stands with reviewers."""

    none = "none"  # nobody queued or reviewed it
    pending = "pending"  # in the review queue
    resolved = "resolved"  # a reviewer labelled or discarded it (or the queue entry closed)


# "none" as a label source: the doodle has no effective label (never labelled, or a
# reviewer discarded it).
NO_LABEL = "none"


class InvalidCursor(ValueError):
    """A pagination cursor `list_doodles` did not make."""


@dataclass(frozen=True)
class DoodleFilters:
    """What to list; every field optional, all given ones must hold (AND).

    Words are compared as stored (lower case); `label`/`label_source` are about the
    doodle's effective label (db.labels' precedence), `label_source="none"` for doodles
    without one. Confidence and date ranges are inclusive at `min_`/`since`, exclusive
    at `until`.
    """

    word: str | None = None  # the prompt the player was shown
    predicted: str | None = None  # the model's top guess
    label: str | None = None
    label_source: LabelSource | str | None = None  # a LabelSource value or "none"
    review: ReviewState | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    model_version: int | None = None
    player_id: str | None = None


@dataclass(frozen=True)
class DoodleItem:
    """One doodle as the grid shows it."""

    id: uuid.UUID
    created_at: dt.datetime
    word: str | None
    predicted: str | None
    confidence: float | None
    label: str | None  # the effective label, None without one
    label_source: LabelSource | None
    review_status: ReviewState
    model_version: int | None
    player_id: str | None
    png_key: str | None  # set when the doodle was sent as a PNG

    @property
    def cursor(self) -> str:
        """Where the page after this item starts, for `list_doodles(after=...)`."""
        return make_cursor(self.created_at, self.id)


@dataclass(frozen=True)
class DoodlePage:
    items: list[DoodleItem]
    next_cursor: str | None  # None on the last page


def make_cursor(created_at: dt.datetime, rid: uuid.UUID) -> str:
    """The cursor of the page after the doodle (created_at, rid): unpadded URL-safe
    base64 of a JSON pair, opaque to clients."""
    raw = json.dumps([created_at.isoformat(), str(rid)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """The (created_at, id) a cursor stands for; raises InvalidCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, rid = json.loads(raw)
        at = dt.datetime.fromisoformat(stamp)
        if at.tzinfo is None or not isinstance(rid, str):
            raise ValueError("bad cursor")
        return at, uuid.UUID(rid)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, AttributeError):
        raise InvalidCursor("not a cursor of this list") from None


def visible() -> ColumnElement[bool]:
    """SQL on `recognitions`: listable, and its player is neither erased nor being erased."""
    return and_(
        text(LISTABLE_SQL),
        ~exists().where(Player.id == Recognition.player_id, Player.erased_at.is_not(None)),
        ~exists().where(Erasure.player_id == Recognition.player_id, Erasure.status == "pending"),
    )


def _effective_label() -> Any:
    """LATERAL (label, source): the doodle's winning label (db.labels.effective_label_query
    for one doodle; the outer query joins its review as `reviews`)."""
    return (
        select(Label.label, Label.source)
        .where(
            Label.recognition_id == Recognition.id,
            or_(Label.source == LabelSource.reviewer, ~decided_by_reviewer()),
        )
        .order_by(rank_of_source().desc(), Label.created_at.desc(), Label.id.desc())
        .limit(1)
        .lateral("effective")
    )


def _conditions(filters: DoodleFilters, effective: Any) -> list[ColumnElement[bool]]:
    f = filters
    where: list[ColumnElement[bool]] = []
    if f.word is not None:
        where.append(Recognition.word == f.word)
    if f.predicted is not None:
        where.append(Recognition.label == f.predicted)
    source = None if f.label_source in (None, NO_LABEL) else LabelSource(f.label_source)
    if f.label is not None or source is not None:
        # Only doodles with such a label row can have it as effective label: the planner
        # may start from the labels' index when few do (reviewer labels), and the lateral
        # join checks that it wins.
        has = select(Label.recognition_id)
        if f.label is not None:
            has = has.where(Label.label == f.label)
            where.append(effective.c.label == f.label)
        if source is not None:
            has = has.where(Label.source == source)
            where.append(effective.c.source == source)
        where.append(Recognition.id.in_(has))
    if f.label_source == NO_LABEL:
        # NOT EXISTS, not "the lateral's label IS NULL": the planner estimates an anti
        # join well, and a NULL test on a lateral's output as almost never true.
        where.append(
            ~exists().where(
                Label.recognition_id == Recognition.id,
                or_(Label.source == LabelSource.reviewer, ~decided_by_reviewer()),
            )
        )
    queued = aliased(Review)  # not the outer join's row: a subquery of its own
    if f.review is ReviewState.none:
        where.append(~exists().where(queued.recognition_id == Recognition.id))
    elif f.review is not None:
        status = ReviewStatus(f.review.value)
        where.append(
            Recognition.id.in_(select(queued.recognition_id).where(queued.status == status))
        )
    if f.min_confidence is not None:
        where.append(Recognition.confidence >= f.min_confidence)
    if f.max_confidence is not None:
        where.append(Recognition.confidence <= f.max_confidence)
    if f.since is not None:
        where.append(Recognition.created_at >= f.since)
    if f.until is not None:
        where.append(Recognition.created_at < f.until)
    if f.model_version is not None:
        where.append(Recognition.model_version_id == f.model_version)
    if f.player_id is not None:
        where.append(Recognition.player_id == f.player_id)
    return where


def _item(row: Row[Any]) -> DoodleItem:
    return DoodleItem(
        id=row.id,
        created_at=row.created_at,
        word=row.word,
        predicted=row.predicted,
        confidence=row.confidence,
        label=row.effective_label,
        label_source=None if row.effective_source is None else LabelSource(row.effective_source),
        review_status=ReviewState(row.review_status or ReviewState.none),
        model_version=row.model_version_id,
        player_id=row.player_id,
        png_key=row.png_key,
    )


def list_doodles(
    s: Session, filters: DoodleFilters, *, after: str | None = None, limit: int = 50
) -> DoodlePage:
    """A page of the doodles `filters` select, newest first; pass the page's
    `next_cursor` as `after` for the next one. Raises InvalidCursor for a cursor this
    function did not make, ValueError for a limit outside 1..MAX_LIMIT."""
    stmt = page_query(filters, after=after, limit=limit)
    # A page is a short walk down an index; starting parallel workers for it cost more
    # than the walk (over 100 ms on a busy machine). This transaction only.
    s.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    items = [_item(row) for row in s.execute(stmt)]
    more = len(items) > limit
    items = items[:limit]
    return DoodlePage(items, items[-1].cursor if more else None)


def page_query(filters: DoodleFilters, *, after: str | None, limit: int) -> Select[Any]:
    """The SELECT of `list_doodles` (one row more than `limit`: is there a next page?)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    effective = _effective_label()
    stmt = (
        select(
            Recognition.id,
            Recognition.created_at,
            Recognition.word,
            Recognition.label.label("predicted"),
            Recognition.confidence,
            effective.c.label.label("effective_label"),
            effective.c.source.label("effective_source"),
            Review.status.label("review_status"),
            Recognition.model_version_id,
            Recognition.player_id,
            Recognition.png_key,
        )
        .select_from(Recognition)
        .outerjoin(Review, Review.recognition_id == Recognition.id)
        .outerjoin(effective, true())
        .where(visible(), *_conditions(filters, effective))
        .order_by(Recognition.created_at.desc(), Recognition.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        at, rid = decode_cursor(after)
        stmt = stmt.where(tuple_(Recognition.created_at, Recognition.id) < tuple_(at, rid))
    return stmt


def listed_ids(s: Session, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` the listing shows (exist, kept, finished, player not erased)."""
    if not ids:
        return set()
    rows = s.scalars(select(Recognition.id).where(Recognition.id.in_(ids), visible()))
    return set(rows)


# -- what bulk decisions check first (services.labels.decide_many) ----------------------


def prompt_words(s: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The prompt word of each of `ids` that has one."""
    rows = s.execute(
        select(Recognition.id, Recognition.word).where(
            Recognition.id.in_(ids), Recognition.word.is_not(None)
        )
    )
    return {row.id: row.word for row in rows}


def reviewer_labels(s: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The latest reviewer label of each of `ids` a reviewer labelled."""
    rows = s.execute(
        select(Label.recognition_id, Label.label)
        .where(Label.recognition_id.in_(ids), Label.source == LabelSource.reviewer)
        .ext(distinct_on(Label.recognition_id))
        .order_by(Label.recognition_id, Label.created_at.desc(), Label.id.desc())
    )
    return {row.recognition_id: row.label for row in rows}


def untrainable(s: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Why a reviewer may not label each of `ids` that they may not label (the checks of
    db.reviews.review_doodle, for many doodles at once)."""
    rows = s.execute(
        with_consent_joins(
            select(
                Recognition.id,
                may_train().label("trainable"),
                Recognition.bitmap.is_not(None).label("has_bitmap"),
            )
        ).where(Recognition.id.in_(ids))
    )
    refused = {}
    for row in rows:
        if not row.trainable:
            refused[row.id] = (
                "its player's consent does not allow training (never given, withdrawn, "
                "or the player erased): a reviewer must not turn it into training data"
            )
        elif not row.has_bitmap:
            refused[row.id] = "it has no bitmap: there is no drawing to label"
    return refused
