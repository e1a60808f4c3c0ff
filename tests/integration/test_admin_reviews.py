"""/v1/admin/reviews: the review queue, against real Postgres, Redis and S3 (moto).

Doodles come in through the API with consent and are finished by the worker's own
function; `queue_review` plays the part of the relabel flow.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from api.auth import key_id
from core.drawings import render_png
from core.storage import open_storage
from db import labels, reviews
from db.datasets import golden_examples, training_examples
from db.models import (
    AuditLog,
    Consent,
    Label,
    LabelSource,
    Player,
    Recognition,
    Review,
    ReviewStatus,
)
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error, post_recognition, recognize
from tests.fixtures.players import secret_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ACTOR = f"admin:{key_id(ADMIN_TOKEN)}"
BASE = "/v1/admin/reviews"
DISAGREES = "model_disagrees: sees 'cup' at 93%"


@pytest.fixture
def doodle(client, worker_runtime, sample_drawings, seed_version):
    """Post a doodle through the API and let the worker finish it; returns its id."""
    counter = iter(range(1000))

    def make(
        word: str = "apple",
        *,
        player: str | None = None,
        store: bool = True,
        train: bool = True,
        consent: bool = True,
        finish: bool = True,
    ) -> uuid.UUID:
        n = next(counter)
        body: dict = {"drawing": sample_drawings[word][n % 25]["drawing"], "word": word}
        if consent:
            body["player_id"] = player or f"player-{n}"
            body["consent"] = {"store": store, "train": train, "version": "2026-11"}
        secret = secret_for(client, body["player_id"]) if "player_id" in body else None
        rid = uuid.UUID(post_recognition(client, body, secret)["id"])
        if finish:
            assert recognize(worker_runtime, rid) == "done"
        return rid

    return make


def _queue(db_session_factory, rid: uuid.UUID, reason: str) -> None:
    with db_session_factory.begin() as s:
        assert reviews.queue_review(s, rid, reason)


def _audit(db_session_factory) -> list[AuditLog]:
    with db_session_factory() as s:
        return list(s.scalars(select(AuditLog).order_by(AuditLog.id)))


def _labels_of(db_session_factory, rid: uuid.UUID) -> list[tuple[str, LabelSource, str]]:
    with db_session_factory() as s:
        rows = s.execute(
            select(Label.label, Label.source, Label.actor)
            .where(Label.recognition_id == rid)
            .order_by(Label.id)
        )
        return [(a, b, c) for a, b, c in rows]


def _find_review(db_session_factory, rid: uuid.UUID) -> Review | None:
    with db_session_factory() as s:
        return s.scalars(select(Review).where(Review.recognition_id == rid)).first()


def _review_row(db_session_factory, rid: uuid.UUID) -> Review:
    review = _find_review(db_session_factory, rid)
    assert review is not None, f"no review of {rid}"
    return review


def _post(client, rid, body, **kw):
    return client.post(f"{BASE}/{rid}", json=body, headers=kw.pop("headers", AUTH), **kw)


BAD_AUTH = {
    "missing": {},
    "wrong token": {"Authorization": "Bearer nope"},
    "not bearer": {"Authorization": f"Basic {ADMIN_TOKEN}"},
    "client key": {"X-API-Key": CLIENT_KEY},
}


@pytest.mark.parametrize("headers", BAD_AUTH.values(), ids=BAD_AUTH.keys())
def test_every_route_needs_an_admin_token(client, db_session_factory, doodle, headers):
    rid = doodle()
    _queue(db_session_factory, rid, "scribble")
    for response in [
        client.get(BASE, headers=headers),
        client.get(f"{BASE}/{rid}/drawing.png", headers=headers),
        client.post(f"{BASE}/{rid}", json={"label": "apple"}, headers=headers),
        client.post(f"{BASE}/{rid}", json={"discard": True}, headers=headers),
    ]:
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _labels_of(db_session_factory, rid) == []
    assert _review_row(db_session_factory, rid).status is ReviewStatus.pending
    assert _audit(db_session_factory) == []


def _in_queue_order(reviews: list[dict], ids: list[uuid.UUID]) -> list[str]:
    """The reviews' ids in db.reviews.queue_order, from what the list shows (every prompt
    here is a word production knows): disagreements, then agreements, the least confident
    first, then the oldest queued."""
    queued = [str(i) for i in ids]

    def key(r: dict) -> tuple:
        guess = r["prediction"]
        agrees = guess["label"] == r["word"]
        return (agrees, guess["confidence"] or 0.0, queued.index(r["recognition_id"]))

    return [r["recognition_id"] for r in sorted(reviews, key=key)]


def test_pending_list_shows_prediction_reason_and_pages_in_queue_order(
    client, db_session_factory, doodle
):
    ids = [doodle("apple"), doodle("cup"), doodle("apple")]
    for rid, reason in zip(ids, [DISAGREES, "near_empty", "scribble"], strict=True):
        _queue(db_session_factory, rid, reason)  # separate transactions: distinct times
    unqueued = doodle()

    response = client.get(BASE, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "pending" and body["next"] is None
    expected = _in_queue_order(body["reviews"], ids)
    assert sorted(expected) == sorted(str(i) for i in ids)
    assert [r["recognition_id"] for r in body["reviews"]] == expected
    first = next(r for r in body["reviews"] if r["recognition_id"] == str(ids[0]))
    assert first["reason"] == DISAGREES and first["word"] == "apple"
    assert first["status"] == "pending" and first["decision"] is None
    assert first["resolved_at"] is None and first["resolved_by"] is None and first["label"] is None
    prediction = first["prediction"]
    assert prediction["label"] and 0 < prediction["confidence"] <= 1
    assert prediction["top"][0]["label"] == prediction["label"]
    assert first["model_version"] is not None
    # Sent as strokes: no PNG object; the drawing is drawn from the strokes on demand.
    assert first["png_key"] is None
    assert first["drawing_url"] == f"{BASE}/{ids[0]}/drawing.png"
    assert first["drawing_url"] == f"{BASE}/{ids[0]}/drawing.png"
    assert str(unqueued) not in json.dumps(body)

    # Keyset pages of one: every review once, in order, then no cursor.
    seen, after = [], None
    for _ in range(5):
        query = {"limit": 1, **({"after": after} if after else {})}
        page = client.get(BASE, query_string=query, headers=AUTH).get_json()
        seen += [r["recognition_id"] for r in page["reviews"]]
        after = page["next"]
        if after is None:
            break
    assert seen == expected

    # Resolving one while paging neither repeats nor skips the others.
    page = client.get(BASE, query_string={"limit": 1}, headers=AUTH).get_json()
    assert _post(client, expected[0], {"discard": True}).status_code == 200
    rest = client.get(BASE, query_string={"after": page["next"]}, headers=AUTH).get_json()
    assert [r["recognition_id"] for r in rest["reviews"]] == expected[1:]

    resolved = client.get(BASE, query_string={"status": "resolved"}, headers=AUTH).get_json()
    assert [r["recognition_id"] for r in resolved["reviews"]] == [expected[0]]


@pytest.mark.parametrize(
    "query",
    [
        {"status": "done"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"after": "not-a-cursor"},
        {"after": "WyJ4IiwgMV0"},  # base64 of ["x", 1]
    ],
)
def test_bad_list_queries_are_400(client, seed_version, query):
    assert_error(client.get(BASE, query_string=query, headers=AUTH), 400, "invalid_request")


def test_label_records_a_reviewer_label_resolves_and_makes_it_golden_or_training(
    client, db_session_factory, doodle, settings
):
    rid = doodle("apple")
    _queue(db_session_factory, rid, DISAGREES)

    response = _post(client, rid, {"label": "  Apple "})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["recognition_id"] == str(rid) and body["status"] == "resolved"
    assert (body["decision"], body["label"], body["resolved_by"]) == ("label", "apple", ACTOR)
    assert body["reason"] == DISAGREES and body["resolved_at"]
    assert body["prediction"]["label"]

    assert _labels_of(db_session_factory, rid) == [("apple", LabelSource.reviewer, ACTOR)]
    review = _review_row(db_session_factory, rid)
    assert review.status is ReviewStatus.resolved and review.resolved_by == ACTOR
    assert review.resolved_at is not None
    [audit] = _audit(db_session_factory)
    assert (audit.actor, audit.action, audit.subject) == (
        ACTOR,
        "review.label",
        f"recognition:{rid}",
    )
    assert audit.details == {
        "review_id": review.id,
        "label": "apple",
        "previous_status": "pending",
        "reason": DISAGREES,
    }
    assert ADMIN_TOKEN not in json.dumps(audit.details)

    with db_session_factory() as s:
        assert labels.effective_labels(s, [rid])[rid] == labels.EffectiveLabel(
            "apple", LabelSource.reviewer
        )
        assert reviews.pending_reviews(s) == []
        assert rid not in {c.id for c in labels.relabel_candidates(s)}
        # Reviewed: golden or training by the deterministic split, never both.
        assert rid in golden_examples(s, golden_fraction=1.0).ids
        assert rid in training_examples(s, golden_fraction=0.0).ids
        fraction = settings.golden_fraction
        golden = rid in golden_examples(s, golden_fraction=fraction).ids
        training = rid in training_examples(s, golden_fraction=fraction).ids
        assert golden != training

    # The queue no longer shows it; the resolved list does.
    assert client.get(BASE, headers=AUTH).get_json()["reviews"] == []
    resolved = client.get(BASE, query_string={"status": "resolved"}, headers=AUTH).get_json()
    assert [r["label"] for r in resolved["reviews"]] == ["apple"]

    # Labelling again changes the decision: the latest reviewer label wins.
    again = _post(client, rid, {"label": "cup"}).get_json()
    assert (again["label"], again["decision"], again["reason"]) == ("cup", "label", DISAGREES)
    with db_session_factory() as s:
        assert labels.effective_labels(s, [rid])[rid].label == "cup"
    assert _audit(db_session_factory)[-1].details["previous_status"] == "resolved"
    # ...but a labelled doodle cannot be discarded (it would leave the label in force).
    assert_error(_post(client, rid, {"discard": True}), 409, "conflict")


def test_reviewer_label_beats_the_automatic_one(client, db_session_factory, doodle):
    rid = doodle("apple")
    with db_session_factory.begin() as s:
        labels.add_label(s, rid, "apple", LabelSource.prompt, actor="flow:relabel")
    assert _post(client, rid, {"label": "cup"}).status_code == 200
    with db_session_factory() as s:
        assert labels.effective_labels(s, [rid])[rid] == labels.EffectiveLabel(
            "cup", LabelSource.reviewer
        )
        assert training_examples(s, golden_fraction=0.0).labels == ["cup"]


def test_discard_resolves_without_a_label_and_keeps_it_out_of_everything(
    client, db_session_factory, doodle
):
    queued = doodle("apple")
    _queue(db_session_factory, queued, "scribble")
    # A doodle relabel had accepted automatically; a reviewer spots it is junk.
    accepted = doodle("cup")
    with db_session_factory.begin() as s:
        labels.add_label(s, accepted, "cup", LabelSource.prompt, actor="flow:relabel")
        assert accepted in training_examples(s, golden_fraction=0.0).ids

    for rid, reason in [(queued, "scribble"), (accepted, reviews.SPOT_CHECK)]:
        response = _post(client, rid, {"discard": True})
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert (body["status"], body["decision"], body["label"]) == ("resolved", "discard", None)
        assert (body["reason"], body["resolved_by"]) == (reason, ACTOR)

    assert _labels_of(db_session_factory, queued) == []
    assert _labels_of(db_session_factory, accepted) == [("cup", LabelSource.prompt, "flow:relabel")]
    with db_session_factory() as s:
        assert labels.relabel_candidates(s) == []
        assert labels.effective_labels(s, [queued, accepted]) == {}
        assert training_examples(s, golden_fraction=0.0).ids == []
        assert golden_examples(s, golden_fraction=1.0).ids == []
    assert [(a.action, a.details["previous_status"]) for a in _audit(db_session_factory)] == [
        ("review.discard", "pending"),
        ("review.discard", None),
    ]

    # Discarding twice is harmless; labelling a discarded doodle reverses the decision.
    assert _post(client, queued, {"discard": True}).status_code == 200
    assert _post(client, queued, {"label": "apple"}).get_json()["decision"] == "label"
    with db_session_factory() as s:
        assert training_examples(s, golden_fraction=0.0).ids == [queued]


def test_spot_check_of_a_doodle_never_queued(client, db_session_factory, doodle):
    rid = doodle("apple")
    assert _find_review(db_session_factory, rid) is None
    with db_session_factory() as s:
        assert rid in {c.id for c in labels.relabel_candidates(s)}

    body = _post(client, rid, {"label": "apple"}).get_json()
    assert (body["reason"], body["status"], body["label"]) == (
        reviews.SPOT_CHECK,
        "resolved",
        "apple",
    )
    review = _review_row(db_session_factory, rid)
    assert (review.reason, review.status, review.resolved_by) == (
        reviews.SPOT_CHECK,
        ReviewStatus.resolved,
        ACTOR,
    )
    with db_session_factory() as s:
        assert labels.relabel_candidates(s) == []
        # relabel's own queueing finds the review already there and adds nothing.
        assert reviews.queue_review(s, rid, "scribble") is False
    [audit] = _audit(db_session_factory)
    assert audit.details["previous_status"] is None
    assert audit.details["reason"] == reviews.SPOT_CHECK


def test_doodles_that_may_not_be_trained_on_are_409(client, db_session_factory, doodle):
    withdrawn = doodle(player="withdrawn")
    erased = doodle(player="erased")
    store_only = doodle(player="store-only", train=False)
    anonymous = doodle(consent=False)
    _queue(db_session_factory, withdrawn, "scribble")
    with db_session_factory.begin() as s:
        s.execute(
            update(Consent).where(Consent.player_id == "withdrawn").values(withdrawn_at=func.now())
        )
        s.execute(update(Player).where(Player.id == "erased").values(erased_at=func.now()))

    cases = {
        withdrawn: "withdrew",
        erased: "erased",
        store_only: "did not consent",
        anonymous: "did not consent",
    }
    for rid, why in cases.items():
        error = assert_error(_post(client, rid, {"label": "apple"}), 409, "conflict")
        assert why in error["message"] and "training" in error["message"]
        assert error["details"] == {"id": str(rid), "action": "label"}
        assert _labels_of(db_session_factory, rid) == []

    review = _review_row(db_session_factory, withdrawn)
    assert review.status is ReviewStatus.pending and review.resolved_by is None
    assert _find_review(db_session_factory, erased) is None
    assert _audit(db_session_factory) == []

    # Not finished yet: nothing to label.
    unfinished = doodle(finish=False)
    error = assert_error(_post(client, unfinished, {"label": "apple"}), 409, "conflict")
    assert "queued" in error["message"]
    assert _find_review(db_session_factory, unfinished) is None

    # Discarding needs no consent: it only keeps the doodle out of training.
    assert _post(client, withdrawn, {"discard": True}).get_json()["decision"] == "discard"


def test_unknown_recognitions_are_404(client, db_session_factory, seed_version):
    unknown = uuid.uuid4()
    for response in [
        _post(client, unknown, {"label": "apple"}),
        _post(client, unknown, {"discard": True}),
        _post(client, "not-a-uuid", {"label": "apple"}),
        client.get(f"{BASE}/{unknown}/drawing.png", headers=AUTH),
        client.get(f"{BASE}/not-a-uuid/drawing.png", headers=AUTH),
    ]:
        assert_error(response, 404, "not_found")
    assert _audit(db_session_factory) == []


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b'["apple"]',
        b"{}",
        b'{"label": ""}',
        b'{"label": "   "}',
        b'{"label": 7}',
        b'{"label": null}',
        b'{"label": "a\\nb"}',
        b'{"label": "' + b"x" * 65 + b'"}',
        b'{"discard": false}',
        b'{"discard": "yes"}',
        b'{"label": "apple", "discard": true}',
        b'{"word": "apple"}',
    ],
)
def test_bad_bodies_are_400(client, db_session_factory, doodle, data):
    rid = doodle()
    _queue(db_session_factory, rid, "scribble")
    response = client.post(
        f"{BASE}/{rid}", data=data, headers=AUTH, content_type="application/json"
    )
    assert_error(response, 400, "invalid_request")
    assert _labels_of(db_session_factory, rid) == []
    assert _review_row(db_session_factory, rid).status is ReviewStatus.pending
    assert _audit(db_session_factory) == []


def test_body_must_be_json(client, doodle):
    rid = doodle()
    response = client.post(
        f"{BASE}/{rid}", data="label=apple", headers=AUTH, content_type="text/plain"
    )
    assert_error(response, 400, "invalid_request")


def test_drawing_png_draws_the_stored_strokes(client, db_session_factory, doodle, settings):
    rid = doodle()
    _queue(db_session_factory, rid, "near_empty")
    with db_session_factory() as s:
        strokes_key = s.get(Recognition, rid).strokes_key
    stored = json.loads(open_storage(settings.object_store_url).get(strokes_key))

    response = client.get(f"{BASE}/{rid}/drawing.png", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert "no-store" in response.headers["Cache-Control"]
    assert response.data == render_png(stored["drawing"])
    image = Image.open(io.BytesIO(response.data))
    assert image.format == "PNG" and image.size == (256, 256)

    # Nothing stored without consent to store.
    not_stored = doodle(consent=False)
    error = assert_error(
        client.get(f"{BASE}/{not_stored}/drawing.png", headers=AUTH), 404, "not_found"
    )
    assert "no drawing" in error["message"]

    # A stored key whose object is gone is a 404 too, not a 500.
    open_storage(settings.object_store_url).delete(strokes_key)
    assert_error(client.get(f"{BASE}/{rid}/drawing.png", headers=AUTH), 404, "not_found")
