"""Who may act on a player's data: the player, with the secret POST /v1/players issued
with their id, or an admin acting for them (audited). Every player route refuses another
player's secret, a client key alone and no credential. Real Postgres, Redis and S3."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from api.auth import key_id
from db.models import AuditLog, Player
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error, post_recognition
from tests.fixtures.players import new_player as issue_player

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONSENT = {"version": "2026-11", "store": True, "train": False}
# Every player route, as (method, path template, JSON body or None).
ROUTES = [
    ("GET", "/v1/players/{id}/consent", None),
    ("PUT", "/v1/players/{id}/consent", CONSENT),
    ("DELETE", "/v1/players/{id}/consent", None),
    ("GET", "/v1/players/{id}/export", None),
]


def post_doodle(client, sample_drawings, player: str, secret: str, consent: dict | None = CONSENT):
    body: dict = {"drawing": sample_drawings["apple"][0]["drawing"], "player_id": player}
    if consent is not None:
        body["consent"] = consent
    return post_recognition(client, body, secret)


@pytest.fixture
def new_player(client, sample_drawings):
    """A player as a game makes one (POST /v1/players), with a first doodle; returns
    (id, secret). The name is the test's, for reading: the server picks the id."""

    def make(name: str) -> tuple[str, str]:
        player, secret = issue_player(client)
        post_doodle(client, sample_drawings, player, secret)
        return player, secret

    return make


def call(client, method: str, path: str, body, headers: dict):
    if body is None:
        return client.open(path, method=method, headers=headers)
    return client.open(path, method=method, json=body, headers=headers)


def test_the_secret_is_issued_once_and_only_its_hash_is_kept(
    client, sample_drawings, db_session_factory
):
    player, secret = issue_player(client)
    first = post_doodle(client, sample_drawings, player, secret)
    anonymous = client.post(
        "/v1/recognitions",
        data=json.dumps({"drawing": sample_drawings["apple"][1]["drawing"]}),
        headers={"X-API-Key": CLIENT_KEY},
        content_type="application/json",
    ).get_json()

    assert len(secret) >= 40  # token_urlsafe(32): 256 bits
    assert "player_secret" not in first
    assert "player_secret" not in anonymous
    read = client.get(f"/v1/recognitions/{first['id']}", headers={"X-API-Key": CLIENT_KEY})
    assert "player_secret" not in read.get_json()
    with db_session_factory() as s:
        stored = s.scalar(select(Player.secret_hash).where(Player.id == player))
    assert stored == hashlib.sha256(secret.encode()).hexdigest()


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
def test_every_player_route_refuses_whoever_is_not_the_player(
    client, new_player, method, template, body
):
    player, secret = new_player("zoe-one")
    _, other_secret = new_player("quill-two")
    path = template.format(id=player)

    assert_error(call(client, method, path, body, {}), 401, "unauthorized")
    assert_error(call(client, method, path, body, {"X-API-Key": CLIENT_KEY}), 401)
    assert_error(call(client, method, path, body, {"X-Player-Secret": other_secret}), 403)
    assert_error(call(client, method, path, body, {"X-Player-Secret": secret + "x"}), 403)
    # An unknown player looks the same as a wrong secret: ids cannot be probed.
    unknown = template.format(id="nobody")
    assert_error(call(client, method, unknown, body, {"X-Player-Secret": secret}), 403)
    assert_error(call(client, method, path, body, {"Authorization": "Bearer wrong"}), 401)

    own = call(client, method, path, body, {"X-Player-Secret": secret})
    assert own.status_code == 200, own.get_data(as_text=True)


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
def test_an_admin_acts_for_a_player_and_is_audited(
    client, new_player, db_session_factory, method, template, body
):
    player, _ = new_player("zoe-one")

    response = call(client, method, template.format(id=player), body, ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_error(call(client, method, template.format(id="nobody"), body, ADMIN), 404)

    with db_session_factory() as s:
        rows = s.scalars(select(AuditLog)).all()
    assert len(rows) == 1  # the unknown player: refused, nothing audited
    row = rows[0]
    assert row.actor == f"admin:{key_id(ADMIN_TOKEN)}"
    assert row.action.startswith("player.")
    assert row.subject.startswith("player:") and player not in row.subject
    assert player not in json.dumps(row.details)


def test_the_audit_ref_is_the_same_for_the_same_player(client, new_player, db_session_factory):
    zoe, _ = new_player("zoe-one")
    quill, _ = new_player("quill-two")
    for player in (zoe, zoe, quill):
        assert client.get(f"/v1/players/{player}/consent", headers=ADMIN).status_code == 200
    with db_session_factory() as s:
        subjects = [r.subject for r in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert subjects[0] == subjects[1] != subjects[2]


def test_an_admin_issues_a_new_secret_and_the_old_one_stops_working(
    client, new_player, db_session_factory
):
    player, old = new_player("zoe-one")
    path = f"/v1/players/{player}/consent"

    assert_error(client.post(f"/v1/admin/players/{player}/secret"), 401)
    assert_error(
        client.post(f"/v1/admin/players/{player}/secret", headers={"X-Player-Secret": old}), 401
    )
    response = client.post(f"/v1/admin/players/{player}/secret", headers=ADMIN)
    assert response.status_code == 200
    new = response.get_json()["player_secret"]

    assert new != old
    assert_error(client.get(path, headers={"X-Player-Secret": old}), 403)
    assert client.get(path, headers={"X-Player-Secret": new}).status_code == 200
    assert_error(client.post("/v1/admin/players/nobody/secret", headers=ADMIN), 404)
    with db_session_factory() as s:
        actions = s.scalars(select(AuditLog.action)).all()
    assert actions == ["player.secret.reissue"]


def test_a_player_made_before_secrets_has_none_that_works(
    client, db_session_factory, sample_drawings
):
    with db_session_factory.begin() as s:
        s.add(Player(id="old-timer"))  # secret_hash NULL: made before secrets were issued
    # No secret names them in a recognition either (and none is handed out).
    refused = client.post(
        "/v1/recognitions",
        json={"drawing": sample_drawings["apple"][0]["drawing"], "player_id": "old-timer"},
        headers={"X-API-Key": CLIENT_KEY, "X-Player-Secret": "guess"},
    )
    assert_error(refused, 401)

    assert_error(client.get("/v1/players/old-timer/consent", headers={"X-Player-Secret": ""}), 401)
    assert_error(
        client.get("/v1/players/old-timer/consent", headers={"X-Player-Secret": "guess"}), 403
    )
