"""services.labels on real Postgres: a reviewer's decision and the relabel pass, with a
judge standing in for the model."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from db import vocabulary
from db.labels import Candidate
from db.models import Label, LabelSource, Review, ReviewStatus, WordStatus
from services import labels as labelling
from services.errors import ReviewRefused, UnknownDoodle
from tests.integration.test_labels import game_doodle

ACTOR = "admin:test"


@dataclass(frozen=True)
class Verdict:
    label: str | None = None
    review: str | None = None


def known_words(s, *words: str) -> None:
    """Make `words` known, as an admin's confirmation does (no production model here)."""
    for word in words:
        vocabulary.decide(s, word, WordStatus.confirmed, actor="admin:test")


def test_a_reviewer_labels_then_may_not_discard(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s, word="cup")
        known_words(s, "hat")

    item = labelling.decide_review(db_session_factory, rid, "hat", actor=ACTOR)

    assert (item.recognition_id, item.decision, item.reviewer_label) == (rid, "label", "hat")
    assert (item.status, item.resolved_by) == (ReviewStatus.resolved, ACTOR)
    with pytest.raises(ReviewRefused):
        labelling.decide_review(db_session_factory, rid, None, actor=ACTOR)


def test_a_reviewer_discards(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s, word="cup")

    item = labelling.decide_review(db_session_factory, rid, None, actor=ACTOR)

    assert (item.decision, item.reviewer_label) == ("discard", None)


def test_deciding_about_an_unknown_doodle(db_session_factory):
    with pytest.raises(UnknownDoodle):
        labelling.decide_review(db_session_factory, uuid.uuid4(), "cup", actor=ACTOR)


def test_a_doodle_without_consent_to_train_may_not_be_labelled(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s, player="no-train", train=False)
    with pytest.raises(ReviewRefused, match="may not be used for training"):
        labelling.decide_review(db_session_factory, rid, "cup", actor=ACTOR)


def test_relabel_records_each_verdict_batch_by_batch(db_session_factory):
    with db_session_factory.begin() as s:
        accepted, queued, undecided = (game_doodle(s, word=w) for w in ("cup", "hat", "tree"))
    verdicts = {
        accepted: Verdict(label="cup"),
        queued: Verdict(review="model_disagrees"),
        undecided: Verdict(),
    }
    batches: list[int] = []

    def judge(chunk: Sequence[Candidate]) -> list[Verdict]:
        batches.append(len(chunk))
        return [verdicts[c.id] for c in chunk]

    counts = labelling.relabel(db_session_factory, judge, actor="flow:test", limit=None, batch=2)

    assert counts == {"accepted": 1, "review": 1, "undecided": 1, "seen": 3}
    assert batches == [2, 1]
    with db_session_factory() as s:
        assert [
            (lb.recognition_id, lb.label, lb.source, lb.actor) for lb in s.scalars(select(Label))
        ] == [(accepted, "cup", LabelSource.prompt, "flow:test")]
        assert [(r.recognition_id, r.reason) for r in s.scalars(select(Review))] == [
            (queued, "model_disagrees")
        ]
    # Decided doodles are not judged again; the undecided one is.
    again = labelling.relabel(db_session_factory, judge, actor="flow:test", limit=None, batch=2)
    assert again == {"accepted": 0, "review": 0, "undecided": 1, "seen": 1}


def test_relabel_with_nothing_to_judge(db_session_factory):
    def judge(chunk: Sequence[Candidate]) -> list[Verdict]:
        raise AssertionError("nothing to judge")

    assert labelling.relabel(db_session_factory, judge, actor="x", limit=None, batch=8) == {
        "seen": 0
    }
