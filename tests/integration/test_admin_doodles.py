"""/v1/admin/doodles: the grid of every kept doodle and its bulk decisions, through the
app on real Postgres, Redis and S3, as a reviewer (and an admin)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import select

from api.auth import key_id
from db import labels, reviews, vocabulary
from db.models import AuditLog, Label, LabelSource, Review, ReviewStatus, WordStatus
from tests.fixtures.app import ADMIN_TOKEN, assert_error
from tests.integration.test_doodle_listing import T0, add_doodle

REVIEWER_TOKEN = "test-reviewer-token"
REVIEWER = {"Authorization": f"Bearer {REVIEWER_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ACTOR = f"reviewer:{key_id(REVIEWER_TOKEN)}"
BASE = "/v1/admin/doodles"


@pytest.fixture
def grid(settings) -> Iterator[Flask]:
    from api import create_app
    from api.resources import EXTENSION

    app = create_app(replace(settings, reviewer_tokens=(REVIEWER_TOKEN,)))
    yield app
    app.extensions[EXTENSION].close()


@pytest.fixture
def client(grid):
    return grid.test_client()


# The words these tests label with: known words, as if an admin had confirmed them (no
# production model here). Unknown words are tests/integration/test_vocabulary.py's.
KNOWN_WORDS = ("cat", "dog", "hat", "cup")


@pytest.fixture(autouse=True)
def known_words(db_session_factory) -> None:
    with db_session_factory.begin() as s:
        for word in KNOWN_WORDS:
            vocabulary.decide(s, word, WordStatus.confirmed, actor="admin:test")


def _at(n: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=n)


def _list(client, query: str = "", headers=REVIEWER) -> dict:
    response = client.get(f"{BASE}?{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _decide(client, body: dict, headers=REVIEWER):
    return client.post(f"{BASE}/decisions", json=body, headers=headers)


def _labels(db_session_factory, rid) -> list[tuple[str, LabelSource, str]]:
    with db_session_factory() as s:
        rows = s.execute(
            select(Label.label, Label.source, Label.actor)
            .where(Label.recognition_id == rid)
            .order_by(Label.id)
        )
        return [(a, b, c) for a, b, c in rows]


def _audit(db_session_factory) -> list[AuditLog]:
    with db_session_factory() as s:
        return list(s.scalars(select(AuditLog).order_by(AuditLog.id)))


def test_a_reviewer_lists_filters_and_pages(client, db_session_factory):
    with db_session_factory.begin() as s:
        cats = [add_doodle(s, at=_at(n), confidence=0.1 * n) for n in range(1, 6)]
        dog = add_doodle(s, at=_at(10), word="dog", predicted="cat", player="p2")
    body = _list(client)
    assert [d["id"] for d in body["doodles"]] == [str(dog), *[str(c) for c in cats[::-1]]]
    first = body["doodles"][0]
    assert first == {
        "id": str(dog),
        "created_at": _at(10).isoformat(),
        "word": "dog",
        "predicted": "cat",
        "confidence": 0.9,
        "label": None,
        "label_source": None,
        "review_status": "none",
        "model_version": None,
        "player_id": "p2",
        "drawing_url": f"/v1/admin/reviews/{dog}/drawing.png",
    }
    assert body["next"] is None
    assert [d["id"] for d in _list(client, "word=DOG")["doodles"]] == [str(dog)]
    assert [d["id"] for d in _list(client, "player_id=p2")["doodles"]] == [str(dog)]
    narrow = _list(client, "min_confidence=0.15&max_confidence=0.35&word=cat")
    assert [d["id"] for d in narrow["doodles"]] == [str(cats[2]), str(cats[1])]
    window = f"since={_at(2).isoformat()}&until={_at(4).isoformat()}".replace("+", "%2B")
    assert [d["id"] for d in _list(client, window)["doodles"]] == [str(cats[2]), str(cats[1])]

    seen: list[str] = []
    query = "limit=2&word=cat"
    while True:
        page = _list(client, query)
        seen += [d["id"] for d in page["doodles"]]
        if page["next"] is None:
            break
        query = f"limit=2&word=cat&after={page['next']}"
    assert seen == [str(c) for c in cats[::-1]]
    assert _list(client, headers=ADMIN)["doodles"]  # admins may do what reviewers do


BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=201", "limit"),
    ("min_confidence=1.5", "min_confidence"),
    ("min_confidence=0.8&max_confidence=0.2", "min_confidence"),
    ("since=2026-11-01T00:00:00", "since"),  # no time zone
    ("since=yesterday", "since"),
    ("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "since"),
    ("review=maybe", "review"),
    ("label_source=oracle", "label_source"),
    ("model_version=-1", "model_version"),
    ("model_version=x", "model_version"),
    ("player_id=a%0A", "player_id"),
    ("word=st%00ar", "word"),
    ("after=bm90LWEtY3Vyc29y", "after"),  # the pattern's shape, not our cursor
    ("after=***", "after"),
    ("colour=red", "colour"),
]


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES, ids=[q for q, _ in BAD_QUERIES])
def test_a_bad_filter_is_400_naming_it(client, db_session_factory, query, field):
    response = client.get(f"{BASE}?{query}", headers=REVIEWER)
    error = assert_error(response, 400, "invalid_request")
    assert error["details"]["field"] == field, error


def test_a_player_erased_through_the_api_vanishes_at_once(client, db_session_factory):
    with db_session_factory.begin() as s:
        kept = add_doodle(s, at=_at(1), player="stays")
        gone = add_doodle(s, at=_at(2), player="leaves")
    assert {d["id"] for d in _list(client)["doodles"]} == {str(kept), str(gone)}
    response = client.delete("/v1/players/leaves", headers=ADMIN)
    assert response.status_code == 202, response.get_data(as_text=True)
    # The request is pending (no worker ran): the doodle is still stored, but not shown.
    assert [d["id"] for d in _list(client)["doodles"]] == [str(kept)]
    assert _list(client, "player_id=leaves")["doodles"] == []
    error = assert_error(_decide(client, {"ids": [str(gone)], "action": "discard"}), 404)
    assert error["details"]["unknown"] == [str(gone)]


def test_bulk_label_records_reviewer_labels_resolves_and_audits_each(client, db_session_factory):
    with db_session_factory.begin() as s:
        ids = [add_doodle(s, at=_at(n)) for n in range(3)]
        reviews.queue_review(s, ids[0], "scribble")
    response = _decide(
        client, {"ids": [str(i) for i in [*ids, ids[0]]], "action": "label", "label": " Hat "}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "action": "label",
        "decided": [{"id": str(i), "decision": "label", "label": "hat"} for i in ids],
    }
    for rid in ids:
        assert _labels(db_session_factory, rid) == [("hat", LabelSource.reviewer, ACTOR)]
    with db_session_factory() as s:
        rows = {r.recognition_id: r for r in s.scalars(select(Review))}
    assert {rid: (rows[rid].status, rows[rid].resolved_by) for rid in ids} == {
        rid: (ReviewStatus.resolved, ACTOR) for rid in ids
    }
    audit = _audit(db_session_factory)
    assert [(a.actor, a.action, a.subject) for a in audit] == [
        *[(ACTOR, "review.label", f"recognition:{rid}") for rid in ids],
        (ACTOR, "review.bulk", "recognitions:3"),
    ]
    assert all(a.at is not None for a in audit)
    # The details a single decision writes (db.reviews.review_doodle), doodle by doodle.
    assert [a.details for a in audit[:2]] == [
        {
            "review_id": rows[ids[0]].id,
            "label": "hat",
            "previous_status": "pending",
            "reason": "scribble",
        },
        {
            "review_id": rows[ids[1]].id,
            "label": "hat",
            "previous_status": None,
            "reason": "spot_check",
        },
    ]
    assert audit[-1].details == {"action": "label", "ids": [str(i) for i in ids], "label": "hat"}
    listed = _list(client, "label=hat&label_source=reviewer&review=resolved")["doodles"]
    assert {d["id"] for d in listed} == {str(i) for i in ids}


def test_bulk_confirm_keeps_each_current_label_or_the_prompt(client, db_session_factory):
    with db_session_factory.begin() as s:
        relabelled = add_doodle(s, at=_at(1), word="cat")
        labels.add_label(s, relabelled, "dog", LabelSource.model, "flow:relabel")
        bare = add_doodle(s, at=_at(2), word="cup")
    response = _decide(client, {"ids": [str(relabelled), str(bare)], "action": "confirm"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [d["label"] for d in response.get_json()["decided"]] == ["dog", "cup"]
    assert _labels(db_session_factory, bare) == [("cup", LabelSource.reviewer, ACTOR)]
    assert _labels(db_session_factory, relabelled)[-1] == ("dog", LabelSource.reviewer, ACTOR)


def test_bulk_discard_drops_labels_and_refuses_reviewer_labelled_ones(client, db_session_factory):
    with db_session_factory.begin() as s:
        junk = add_doodle(s, at=_at(1))
        labels.add_label(s, junk, "cat", LabelSource.prompt, "flow:relabel")
        labelled = add_doodle(s, at=_at(2))
        reviews.review_doodle(s, labelled, "cat", actor="admin:x")
    audit_before = len(_audit(db_session_factory))

    both = {"ids": [str(junk), str(labelled)], "action": "discard"}
    error = assert_error(_decide(client, both), 409, "conflict")
    assert list(error["details"]["refused"]) == [str(labelled)]
    assert "label it again" in error["details"]["refused"][str(labelled)]
    assert error["details"]["unknown"] == []
    assert len(_audit(db_session_factory)) == audit_before  # nothing decided
    assert _list(client, "label_source=prompt")["doodles"][0]["id"] == str(junk)

    response = _decide(client, {"ids": [str(junk)], "action": "discard"})
    assert response.get_json()["decided"] == [
        {"id": str(junk), "decision": "discard", "label": None}
    ]
    assert _list(client, "label_source=none")["doodles"][0]["id"] == str(junk)
    discard = _audit(db_session_factory)[-2]
    assert (discard.action, discard.subject, discard.actor) == (
        "review.discard",
        f"recognition:{junk}",
        ACTOR,
    )
    assert discard.details["previous_status"] is None and "label" not in discard.details


def test_unknown_or_unlisted_ids_are_404_naming_them_and_nothing_changes(
    client, db_session_factory
):
    with db_session_factory.begin() as s:
        fine = add_doodle(s, at=_at(1))
        secret = add_doodle(s, at=_at(2), store=False, train=False, player="p3")
        untrainable = add_doodle(s, at=_at(3), train=False, player="p2")
    nobody = uuid.uuid4()
    body = {"ids": [str(fine), str(secret), str(nobody)], "action": "label", "label": "cat"}
    error = assert_error(_decide(client, body), 404, "not_found")
    assert error["details"]["unknown"] == [str(secret), str(nobody)]
    assert str(nobody) in error["message"]
    body = {"ids": [str(fine), str(untrainable)], "action": "confirm"}
    error = assert_error(_decide(client, body), 409, "conflict")
    assert list(error["details"]["refused"]) == [str(untrainable)]
    assert "consent" in error["details"]["refused"][str(untrainable)]
    assert _labels(db_session_factory, fine) == []
    assert _audit(db_session_factory) == []


BAD_BODIES = [
    ({"ids": [], "action": "discard"}, "ids"),
    ({"ids": ["not-a-uuid"], "action": "discard"}, "ids[0]"),
    ({"ids": [str(uuid.uuid4())] * 201, "action": "discard"}, "ids"),
    ({"ids": [str(uuid.uuid4())], "action": "label"}, "label"),
    ({"ids": [str(uuid.uuid4())], "action": "discard", "label": "cat"}, "label"),
    ({"ids": [str(uuid.uuid4())], "action": "label", "label": "   "}, "label"),
    ({"ids": [str(uuid.uuid4())], "action": "burn"}, "action"),
    ({"ids": [str(uuid.uuid4())], "action": "discard", "why": "x"}, "why"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_a_bad_decision_body_is_400_naming_the_field(client, db_session_factory, body, field):
    error = assert_error(_decide(client, body), 400, "invalid_request")
    assert error["details"]["field"] == field, error
    assert _audit(db_session_factory) == []


def test_a_decision_body_must_be_json(client):
    response = client.post(
        f"{BASE}/decisions", data="ids=1", headers=REVIEWER, content_type="text/plain"
    )
    assert_error(response, 400, "invalid_request")


def test_a_full_page_of_200_is_decided_in_one_request(client, db_session_factory):
    with db_session_factory.begin() as s:
        ids = [add_doodle(s, at=_at(n), player=f"p{n % 7}") for n in range(200)]
    response = _decide(client, {"ids": [str(i) for i in ids], "action": "confirm"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["decided"]) == 200
    assert _list(client, "label_source=reviewer&limit=200")["next"] is None
    assert len(_list(client, "label_source=reviewer&limit=200")["doodles"]) == 200
    audit = _audit(db_session_factory)
    assert len(audit) == 201
    assert {a.subject for a in audit[:-1]} == {f"recognition:{i}" for i in ids}
