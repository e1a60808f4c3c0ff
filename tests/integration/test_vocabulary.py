"""Labels are words (services.vocabulary, /v1/admin/words): a reviewer's label is a known
word, or a new word they propose, which trains once an admin confirms it. Through the
app on real Postgres, Redis and S3, as a reviewer and an admin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import select

from api.auth import key_id
from db import labels, vocabulary
from db.datasets import training_examples
from db.models import AuditLog, Label, LabelSource, RecognitionOrigin, Word, WordStatus
from services import labels as labelling
from services import vocabulary as vocab_service
from tests.fixtures.app import ADMIN_TOKEN, assert_error
from tests.integration.test_doodle_listing import T0, add_doodle

REVIEWER_TOKEN = "test-reviewer-token"
REVIEWER = {"Authorization": f"Bearer {REVIEWER_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WHO = f"reviewer:{key_id(REVIEWER_TOKEN)}"
ADMIN_WHO = f"admin:{key_id(ADMIN_TOKEN)}"


@pytest.fixture
def words_app(settings) -> Iterator[Flask]:
    from api import create_app
    from api.resources import EXTENSION

    app = create_app(replace(settings, reviewer_tokens=(REVIEWER_TOKEN,)))
    yield app
    app.extensions[EXTENSION].close()


@pytest.fixture
def client(words_app):
    return words_app.test_client()


@pytest.fixture
def production(seed_version: int) -> int:
    """The seed model in production: its 20 classes are known words (apple, cup, ...)."""
    return seed_version


def _doodle(db_session_factory, n: int = 0, word: str = "apple"):
    with db_session_factory.begin() as s:
        return add_doodle(s, at=T0 + dt.timedelta(seconds=n), word=word, predicted=word)


def _review(client, rid, body, headers=REVIEWER):
    return client.post(f"/v1/admin/reviews/{rid}", json=body, headers=headers)


def _reviewer_labels(db_session_factory) -> list[str]:
    with db_session_factory() as s:
        return list(s.scalars(select(Label.label).where(Label.source == LabelSource.reviewer)))


def _trained_labels(db_session_factory) -> list[str]:
    with db_session_factory() as s:
        return sorted(training_examples(s, golden_fraction=0.0).labels)


def test_a_label_that_is_not_a_word_is_a_400_saying_why(client, db_session_factory, production):
    rid = _doodle(db_session_factory)
    for label in ["?", "a1", "t--shirt", "-", "cat!"]:
        error = assert_error(_review(client, rid, {"label": label}), 400, "invalid_request")
        assert error["details"]["field"] == "label"
        assert "is not a word" in error["message"], error
    assert _reviewer_labels(db_session_factory) == []


def test_known_words_are_normalised_and_accepted(client, db_session_factory, production):
    rid = _doodle(db_session_factory)
    response = _review(client, rid, {"label": "  ICE\u00a0\u00a0 Cream "})
    assert response.status_code == 200, response.text
    assert response.json["label"] == "ice cream"
    response = _review(client, rid, {"label": "T\u2011Shirt"})  # a non-breaking hyphen
    assert response.status_code == 200, response.text
    assert _reviewer_labels(db_session_factory) == ["ice cream", "t-shirt"]


def test_an_unknown_word_is_a_422_with_suggestions_and_nothing_is_stored(
    client, db_session_factory, production
):
    rid = _doodle(db_session_factory)
    error = assert_error(_review(client, rid, {"label": "Aple"}), 422, "unprocessable")
    assert error["message"].startswith("unknown word 'aple'; did you mean 'apple'?")
    assert '"new_word": true' in error["message"]
    assert error["details"]["reason"] == "unknown_word"
    assert error["details"]["word"] == "aple"
    assert error["details"]["suggestions"] == ["apple"]
    assert _reviewer_labels(db_session_factory) == []
    with db_session_factory() as s:
        assert s.scalars(select(Word)).all() == []
    # Bulk decisions: the same answer, nothing decided.
    body = {"ids": [str(rid)], "action": "label", "label": "aple"}
    error = assert_error(
        client.post("/v1/admin/doodles/decisions", json=body, headers=REVIEWER), 422
    )
    assert error["details"]["suggestions"] == ["apple"]
    assert _reviewer_labels(db_session_factory) == []


def test_a_proposed_word_is_stored_but_trains_only_once_an_admin_confirms_it(
    client, db_session_factory, production
):
    rid = _doodle(db_session_factory, 1)
    known = _doodle(db_session_factory, 2)
    assert _review(client, known, {"label": "cup"}).status_code == 200
    response = _review(client, rid, {"label": "pear", "new_word": True})
    assert response.status_code == 200, response.text
    assert response.json["label"] == "pear"
    assert _trained_labels(db_session_factory) == ["cup"]  # pear waits for an admin

    listed = client.get("/v1/admin/words?status=proposed", headers=REVIEWER)
    assert listed.status_code == 200, listed.text
    [entry] = listed.json["words"]
    assert (entry["word"], entry["status"], entry["proposed_by"], entry["doodles"]) == (
        "pear",
        "proposed",
        WHO,
        1,
    )
    assert entry["decided_by"] is None
    # Reviewers only propose.
    assert_error(
        client.post("/v1/admin/words/pear", json={"decision": "confirm"}, headers=REVIEWER), 403
    )
    assert vocab_service.awaiting_confirmation(db_session_factory) == [
        {"word": "pear", "proposed_by": WHO, "proposed_at": entry["proposed_at"], "doodles": 1}
    ]

    response = client.post("/v1/admin/words/Pear", json={"decision": "confirm"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json["previous_status"] == "proposed"
    assert response.json["word"]["status"] == "confirmed"
    assert response.json["word"]["decided_by"] == ADMIN_WHO
    assert _trained_labels(db_session_factory) == ["cup", "pear"]
    assert vocab_service.awaiting_confirmation(db_session_factory) == []
    # Now a known word: no proposal needed.
    assert _review(client, known, {"label": "pear"}).status_code == 200
    with db_session_factory() as s:
        audit = [(a.actor, a.action, a.subject) for a in s.scalars(select(AuditLog))]
    assert (WHO, "word.propose", "word:pear") in audit
    assert (ADMIN_WHO, "word.confirm", "word:pear") in audit


def test_a_rejected_word_never_trains_and_may_not_be_proposed_again(
    client, db_session_factory, production
):
    rid = _doodle(db_session_factory)
    assert _review(client, rid, {"label": "aple", "new_word": True}).status_code == 200
    response = client.post("/v1/admin/words/aple", json={"decision": "reject"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json["word"]["status"] == "rejected"
    assert _trained_labels(db_session_factory) == []
    error = assert_error(_review(client, rid, {"label": "aple", "new_word": True}), 422)
    assert error["details"]["reason"] == "rejected_word"
    assert "did you mean 'apple'" in error["message"]
    # Relabelled with a known word, the doodle trains again (the latest reviewer label wins).
    assert _review(client, rid, {"label": "apple"}).status_code == 200
    assert _trained_labels(db_session_factory) == ["apple"]
    assert [
        w["word"]
        for w in client.get("/v1/admin/words?status=rejected", headers=ADMIN).json["words"]
    ] == ["aple"]


def test_words_of_production_or_the_dataset_cannot_be_rejected(
    client, db_session_factory, production
):
    error = assert_error(
        client.post("/v1/admin/words/apple", json={"decision": "reject"}, headers=ADMIN), 409
    )
    assert "cannot be rejected" in error["message"]
    assert_error(
        client.post("/v1/admin/words/%3F", json={"decision": "confirm"}, headers=ADMIN), 400
    )
    # An admin may confirm a word nobody proposed: it is known at once.
    response = client.post("/v1/admin/words/bicycle", json={"decision": "confirm"}, headers=ADMIN)
    assert response.status_code == 200 and response.json["previous_status"] is None
    assert response.json["word"]["proposed_by"] is None
    rid = _doodle(db_session_factory)
    assert _review(client, rid, {"label": "bicycle"}).status_code == 200


def test_imported_words_are_known(client, db_session_factory):
    """No production model: the dataset's words are known, through their import labels."""
    with db_session_factory.begin() as s:
        imported = add_doodle(s, at=T0, word=None, player=None, origin=RecognitionOrigin.import_)
        labels.add_label(s, imported, "the eiffel tower", LabelSource.import_, "test:import")
        assert vocabulary.imported_words(s) == {"the eiffel tower"}
    rid = _doodle(db_session_factory, 1)
    assert _review(client, rid, {"label": "The  Eiffel Tower"}).status_code == 200
    error = assert_error(_review(client, rid, {"label": "eiffel tower"}), 422)
    assert error["details"]["suggestions"] == ["the eiffel tower"]


def test_bulk_confirm_of_an_unknown_prompt_word_asks_for_a_proposal(
    client, db_session_factory, production
):
    apple, kiwi = _doodle(db_session_factory, 1), _doodle(db_session_factory, 2, word="kiwi")
    body = {"ids": [str(apple), str(kiwi)], "action": "confirm"}
    post = lambda b: client.post("/v1/admin/doodles/decisions", json=b, headers=REVIEWER)  # noqa: E731
    error = assert_error(post(body), 422)
    assert list(error["details"]["words"]) == ["kiwi"]
    assert _reviewer_labels(db_session_factory) == []
    response = post({**body, "new_word": True})
    assert response.status_code == 200, response.text
    assert sorted(_reviewer_labels(db_session_factory)) == ["apple", "kiwi"]
    with db_session_factory() as s:
        assert s.get(Word, "kiwi").status is WordStatus.proposed
        bulk = s.scalars(select(AuditLog).where(AuditLog.action == "review.bulk")).one()
        assert bulk.details["proposed"] == ["kiwi"]


def test_services_refuse_unknown_words_whatever_the_channel(db_session_factory):
    rid = _doodle(db_session_factory)
    with pytest.raises(vocab_service.UnknownWord, match="unknown word 'cat'"):
        labelling.decide_review(db_session_factory, rid, "cat", actor="admin:x")
    with pytest.raises(labels.InvalidLabel):
        labelling.decide_review(db_session_factory, rid, "?", actor="admin:x")
    item = labelling.decide_review(db_session_factory, rid, "cat", actor="admin:x", new_word=True)
    assert item.reviewer_label == "cat"
