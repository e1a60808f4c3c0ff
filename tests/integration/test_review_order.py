"""The review queue's order (db.reviews.queue_order) against real Postgres: new words,
then disagreements, then the rest, the least confident first; keyset pages in that order
never repeat nor skip a review."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from db import review_listing, reviews
from db.models import Recognition, ReviewStatus
from tests.integration.test_labels import game_doodle

# name: (prompt, the model's guess, its confidence); "zebra" is no word of the seed model.
DOODLES = {
    "new, sure": ("zebra", "cup", 0.9),
    "new, no guess": ("zebra", None, None),
    "disagrees, unsure": ("cup", "apple", 0.3),
    "disagrees, sure": ("cup", "apple", 0.8),
    "agrees": ("cup", "cup", 0.4),
    "agrees, queued later": ("cup", "cup", 0.4),
    "no prompt": (None, "cup", 0.2),
}
EXPECTED = [
    "new, no guess",
    "new, sure",
    "disagrees, unsure",
    "disagrees, sure",
    "no prompt",
    "agrees",
    "agrees, queued later",
]
# Queued in an order unlike the expected one: the queue time decides only ties.
QUEUED = [
    "agrees",
    "disagrees, sure",
    "no prompt",
    "new, sure",
    "agrees, queued later",
    "disagrees, unsure",
    "new, no guess",
]


def _doodle(sessions, word: str | None, label: str | None, confidence: float | None) -> uuid.UUID:
    with sessions.begin() as s:
        rid = game_doodle(s, word=word)
        s.execute(
            update(Recognition)
            .where(Recognition.id == rid)
            .values(label=label, confidence=confidence)
        )
    return rid


@pytest.fixture
def queue(db_session_factory, seed_version) -> dict[str, uuid.UUID]:
    """The DOODLES queued one transaction each (distinct queue times), in QUEUED order."""
    ids = {name: _doodle(db_session_factory, *DOODLES[name]) for name in QUEUED}
    for name in QUEUED:
        with db_session_factory.begin() as s:
            reviews.queue_review(s, ids[name], "model_disagrees")
    return ids


def _names(ids: dict[str, uuid.UUID], found: list[uuid.UUID]) -> list[str]:
    by_id = {rid: name for name, rid in ids.items()}
    return [by_id[rid] for rid in found]


def test_the_queue_puts_new_words_then_disagreements_then_the_rest(queue, db_session_factory):
    with db_session_factory() as s:
        pending = reviews.pending_reviews(s)
        listed = review_listing.list_reviews(s, limit=50)
    assert _names(queue, [r.recognition_id for r in pending]) == EXPECTED
    assert _names(queue, [i.recognition_id for i in listed.items]) == EXPECTED
    assert listed.next_cursor is None
    assert [i.priority_name for i in listed.items] == [
        "new_word",
        "new_word",
        "disagreement",
        "disagreement",
        "other",
        "other",
        "other",
    ]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_pages_never_repeat_nor_skip(queue, db_session_factory, limit):
    seen: list[uuid.UUID] = []
    after = None
    with db_session_factory() as s:
        for _ in range(len(DOODLES) + 1):
            page = review_listing.list_reviews(s, limit=limit, after=after)
            seen += [i.recognition_id for i in page.items]
            after = page.next_cursor
            if after is None:
                break
    assert _names(queue, seen) == EXPECTED


def test_reviews_resolved_or_queued_while_paging_neither_repeat_nor_shift(
    queue, db_session_factory
):
    with db_session_factory() as s:
        first = review_listing.list_reviews(s, limit=2)
    assert _names(queue, [i.recognition_id for i in first.items]) == EXPECTED[:2]
    # Meanwhile: a reviewer settles the next one, and a new disagreement is queued that
    # sorts between the two disagreements, after the page already read.
    with db_session_factory.begin() as s:
        reviews.discard_doodle(s, queue["disagrees, unsure"], actor="reviewer:r1")
    late = _doodle(db_session_factory, "cup", "apple", 0.5)
    with db_session_factory.begin() as s:
        reviews.queue_review(s, late, "model_disagrees")
    queue["late disagreement"] = late

    with db_session_factory() as s:
        rest = review_listing.list_reviews(s, limit=50, after=first.next_cursor)

    assert _names(queue, [i.recognition_id for i in rest.items]) == [
        "late disagreement",
        "disagrees, sure",
        "no prompt",
        "agrees",
        "agrees, queued later",
    ]


def test_a_cursor_of_one_status_is_refused_by_the_other(queue, db_session_factory):
    with db_session_factory.begin() as s:
        reviews.discard_doodle(s, queue["agrees"], actor="reviewer:r1")
        reviews.discard_doodle(s, queue["no prompt"], actor="reviewer:r1")
    with db_session_factory() as s:
        pending = review_listing.list_reviews(s, limit=1)
        resolved = review_listing.list_reviews(s, status=ReviewStatus.resolved, limit=1)
        assert pending.next_cursor is not None and resolved.next_cursor is not None
        with pytest.raises(review_listing.InvalidCursor):
            review_listing.list_reviews(s, status=ReviewStatus.resolved, after=pending.next_cursor)
        with pytest.raises(review_listing.InvalidCursor):
            review_listing.list_reviews(s, after=resolved.next_cursor)
        rest = review_listing.list_reviews(
            s, status=ReviewStatus.resolved, after=resolved.next_cursor
        )
        assert len(rest.items) == 1
