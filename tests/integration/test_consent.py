"""Consent as Art. 7 asks (GET/PUT/DELETE /v1/players/<id>/consent, and the consent block
of a recognition), and what the consent in force decides: a doodle still queued or
running when consent is withdrawn is not stored; relabel and fine-tune leave out the
player's earlier doodles once the grant in force no longer allows training."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from core.storage import open_storage
from db import processing
from db.datasets import training_examples
from db.labels import relabel_candidates
from db.models import Consent, Label, LabelSource, Recognition
from services import players
from tests.fixtures.app import CLIENT_KEY, assert_error, post_recognition, recognize
from tests.fixtures.players import as_player, secret_for
from tests.integration.test_labels import game_doodle

GRANT = {"version": "2026-11", "store": True, "train": True}


def post(client, sample_drawings, player: str, consent: dict | None = GRANT) -> dict:
    """A doodle of the player (made on first use), with their secret; the answer, and the
    secret as `player_secret`."""
    body: dict = {"drawing": sample_drawings["apple"][2]["drawing"], "word": "apple"}
    body["player_id"] = player
    if consent is not None:
        body["consent"] = consent
    secret = secret_for(client, player)
    return {**post_recognition(client, body, secret), "player_secret": secret}


# -- the routes ---------------------------------------------------------------------------


def test_a_new_grant_replaces_the_one_in_force(client, sample_drawings):
    secret = post(client, sample_drawings, "player-a")["player_secret"]
    path = "/v1/players/player-a/consent"

    before = client.get(path, headers=as_player(secret)).get_json()
    assert before["in_force"] | {"granted_at": None} == {
        **GRANT,
        "granted_at": None,
        "withdrawn_at": None,
    }
    assert len(before["history"]) == 1

    narrower = {"version": "2026-12", "store": True, "train": False}
    after = client.put(path, json=narrower, headers=as_player(secret)).get_json()
    assert {k: after["in_force"][k] for k in narrower} == narrower
    old, new = after["history"]
    assert old["version"] == "2026-11" and old["withdrawn_at"] is not None
    assert new["withdrawn_at"] is None

    # The same grant again changes nothing.
    again = client.put(path, json=narrower, headers=as_player(secret)).get_json()
    assert again == after


def test_withdrawal_leaves_no_grant_in_force(client, sample_drawings):
    secret = post(client, sample_drawings, "player-a")["player_secret"]
    path = "/v1/players/player-a/consent"

    response = client.delete(path, headers=as_player(secret))

    assert response.status_code == 200
    body = response.get_json()
    assert body["in_force"] is None
    assert [g["withdrawn_at"] is not None for g in body["history"]] == [True]
    assert client.delete(path, headers=as_player(secret)).get_json() == body  # idempotent


def test_bad_grants_are_refused(client, sample_drawings):
    secret = post(client, sample_drawings, "player-a")["player_secret"]
    path = "/v1/players/player-a/consent"
    headers = as_player(secret)

    train_only = {"version": "v1", "store": False, "train": True}
    assert_error(client.put(path, json=train_only, headers=headers), 400, "invalid_request")
    blank = {"version": "  ", "store": True, "train": False}
    assert_error(client.put(path, json=blank, headers=headers), 400)
    assert_error(client.put(path, json={"version": "v1", "store": True}, headers=headers), 400)
    assert_error(client.put(path, data="{", headers=headers, content_type="application/json"), 400)
    assert_error(client.put(path, data="x", headers=headers, content_type="text/plain"), 400)
    # Nothing changed.
    assert len(client.get(path, headers=headers).get_json()["history"]) == 1


def test_a_recognition_with_a_different_consent_replaces_the_grant(
    client, sample_drawings, db_session_factory
):
    post(client, sample_drawings, "player-a")
    post(client, sample_drawings, "player-a")  # the same grant: kept as it is
    post(client, sample_drawings, "player-a", {"version": "2026-12", "store": True, "train": False})
    post(client, sample_drawings, "player-a", consent=None)  # no block: nothing changes

    with db_session_factory() as s:
        grants = s.scalars(select(Consent).order_by(Consent.id)).all()
    assert [(g.version, g.train, g.withdrawn_at is None) for g in grants] == [
        ("2026-11", True, False),
        ("2026-12", False, True),
    ]


# -- from withdrawal on, nothing more is stored ------------------------------------------


def test_a_queued_doodle_is_not_stored_once_consent_is_withdrawn(
    client, sample_drawings, worker_runtime, settings, db_session_factory, seed_version
):
    answer = post(client, sample_drawings, "player-a")
    rid = uuid.UUID(answer["id"])
    assert (
        client.delete(
            "/v1/players/player-a/consent", headers=as_player(answer["player_secret"])
        ).status_code
        == 200
    )

    assert recognize(worker_runtime, rid) == "done"

    with db_session_factory() as s:
        row = s.get(Recognition, rid)
        assert row is not None
        assert row.label is not None  # answered
        assert not row.consent_store and not row.consent_train
        assert (row.payload, row.payload_png, row.bitmap) == (None, None, None)
        assert (row.strokes_key, row.png_key, row.stored_at) == (None, None, None)
    objects = open_storage(settings.object_store_url).list("")
    assert [k for k in objects if not k.startswith("models/")] == []
    read = client.get(f"/v1/recognitions/{rid}", headers={"X-API-Key": CLIENT_KEY})
    assert read.get_json()["stored"] is False


def test_a_doodle_kept_under_a_grant_in_force_is_stored(
    client, sample_drawings, worker_runtime, settings, db_session_factory, seed_version
):
    # The control: the same path with consent in force writes the object.
    rid = uuid.UUID(post(client, sample_drawings, "player-a")["id"])
    assert recognize(worker_runtime, rid) == "done"
    with db_session_factory() as s:
        row = s.get(Recognition, rid)
        assert row is not None and row.consent_store and row.stored_at is not None
    assert list(open_storage(settings.object_store_url).list("segments/"))


def test_a_running_doodle_finished_after_withdrawal_is_not_kept(
    client, sample_drawings, settings, db_session_factory
):
    rid = uuid.UUID(post(client, sample_drawings, "player-a")["id"])
    with db_session_factory.begin() as s:
        assert [c.id for c in processing.claim_batch(s, [rid])] == [rid]
    players.withdraw_consent(db_session_factory, "player-a")

    outcome = processing.Outcome(
        rid, label="apple", confidence=0.9, bitmap=b"\x01" * 784, strokes_key="segments/x"
    )
    with db_session_factory.begin() as s:
        finished = processing.finish(s, [outcome])

    assert finished[rid].stored is False
    with db_session_factory() as s:
        row = s.get(Recognition, rid)
        assert row is not None and row.status.value == "done"
        assert (row.payload, row.bitmap, row.strokes_key) == (None, None, None)
        assert s.execute(select(Recognition.id).where(Recognition.consent_store)).all() == []


# -- relabel and fine-tune leave out the player's earlier doodles ------------------------


def _trainable(db_session_factory) -> set[uuid.UUID]:
    """What the next relabel pass would take up."""
    with db_session_factory() as s:
        return {c.id for c in relabel_candidates(s)}


def _in_training_set(db_session_factory, rid: uuid.UUID) -> bool:
    with db_session_factory.begin() as s:
        s.add(Label(recognition_id=rid, label="cup", source=LabelSource.prompt, actor="test"))
    with db_session_factory() as s:
        return rid in training_examples(s, golden_fraction=0.0).ids


def test_a_new_grant_that_allows_training_keeps_earlier_doodles_trainable(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s, player="player-a")
    players.grant_consent(db_session_factory, "player-a", version="v2", store=True, train=True)

    assert _trainable(db_session_factory) == {rid}
    assert _in_training_set(db_session_factory, rid)


def test_a_new_grant_without_training_takes_earlier_doodles_out(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s, player="player-a")
        other = game_doodle(s, player="player-b")
    players.grant_consent(db_session_factory, "player-a", version="v2", store=True, train=False)

    assert _trainable(db_session_factory) == {other}
    assert not _in_training_set(db_session_factory, rid)


def test_a_withdrawal_takes_earlier_doodles_out(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s, player="player-a")
        other = game_doodle(s, player="player-b")
    players.withdraw_consent(db_session_factory, "player-a")

    assert _trainable(db_session_factory) == {other}
    assert not _in_training_set(db_session_factory, rid)
    assert _in_training_set(db_session_factory, other)


def test_a_doodle_drawn_without_training_stays_out_under_a_later_grant(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s, player="player-a", train=False)
    players.grant_consent(db_session_factory, "player-a", version="v2", store=True, train=True)

    # Its snapshot says what the player allowed when drawing it: a later grant does not widen it.
    assert _trainable(db_session_factory) == set()
    assert not _in_training_set(db_session_factory, rid)
