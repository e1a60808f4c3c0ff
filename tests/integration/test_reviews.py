"""The review queue (db.reviews), against real Postgres; reviewers' decisions through the
API are tests/integration/test_admin_reviews.py."""

from __future__ import annotations

from db import reviews
from db.models import ReviewStatus
from tests.integration.test_labels import game_doodle


def test_queue_review_is_idempotent(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s)
        other = game_doodle(s)
        assert reviews.queue_review(s, rid, "scribble") is True
        assert reviews.queue_review(s, rid, "near_empty") is False
        assert reviews.queue_reviews(s, [(rid, "again"), (other, "near_empty")]) == 1
    with db_session_factory() as s:
        pending = reviews.pending_reviews(s)
        assert [(r.recognition_id, r.reason) for r in pending] == [
            (rid, "scribble"),
            (other, "near_empty"),
        ]
        assert all(r.status is ReviewStatus.pending for r in pending)
