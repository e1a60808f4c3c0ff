"""Players own their identity (issue 18): the server issues player ids, a recognition names
a player only with their secret, and no answer tells whether an id exists."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.rates import Rate
from core.settings import Settings
from db.models import Consent, Player, Recognition
from tests.fixtures.app import CLIENT_KEY, assert_error
from tests.fixtures.players import as_player, new_player

SQUATTER_KEY = "squatter-client-key"  # client keys ship inside game clients: anyone has one
LINE = [[[0, 50, 100], [0, 50, 100]]]
GRANT = {"version": "2026-11", "store": True, "train": True}


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    from api import create_app
    from api.resources import EXTENSION

    app = create_app(replace(settings, client_keys=(CLIENT_KEY, SQUATTER_KEY)))
    app.config["TESTING"] = True
    yield app
    app.extensions[EXTENSION].close()


def _post(client: FlaskClient, body: dict, key: str = CLIENT_KEY, **headers: str):
    return client.post(
        "/v1/recognitions",
        data=json.dumps(body),
        headers={"X-API-Key": key, **headers},
        content_type="application/json",
    )


def _doodles_of(sessions: sessionmaker[Session], player_id: str) -> int:
    with sessions() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(Recognition)
                .where(Recognition.player_id == player_id)
            )
            or 0
        )


def _export(client: FlaskClient, player_id: str, secret: str) -> dict:
    response = client.get(f"/v1/players/{player_id}/export", headers=as_player(secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.loads(response.get_data())


def test_the_server_issues_an_unguessable_id_and_a_secret_shown_once(client, db_session_factory):
    response = client.post("/v1/players", headers={"X-API-Key": CLIENT_KEY})

    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    assert set(made) == {"player_id", "player_secret"}
    assert made["player_id"].startswith("p_") and len(made["player_id"]) >= 20
    assert len(made["player_secret"]) >= 40
    assert response.headers["Cache-Control"] == "no-store"
    other, _ = new_player(client)
    assert other != made["player_id"]
    with db_session_factory() as s:
        row = s.get(Player, made["player_id"])
        assert row is not None and made["player_secret"] not in (row.secret_hash or "")
    # The secret works on the player's own routes from the start.
    consent = client.get(
        f"/v1/players/{made['player_id']}/consent", headers=as_player(made["player_secret"])
    )
    assert consent.status_code == 200 and consent.get_json()["in_force"] is None


def test_a_new_player_may_bring_their_first_consent(client):
    player, secret = new_player(client, consent=GRANT)

    in_force = client.get(f"/v1/players/{player}/consent", headers=as_player(secret)).get_json()
    assert {k: in_force["in_force"][k] for k in GRANT} == GRANT
    doodle = _post(client, {"drawing": LINE, "player_id": player}, **as_player(secret))
    assert doodle.status_code == 202, doodle.get_json()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"player_id": "mine"}, 400, "player_id"),  # nobody chooses their id
        ({"consent": {**GRANT, "store": False}}, 400, "consent"),  # train needs store
        ({"consent": {"version": "", "store": True, "train": False}}, 400, "consent.version"),
    ],
)
def test_a_new_player_request_is_validated(client, db_session_factory, body, status, field):
    response = client.post(
        "/v1/players",
        data=json.dumps(body),
        headers={"X-API-Key": CLIENT_KEY},
        content_type="application/json",
    )
    error = assert_error(response, status)
    assert error["details"].get("field", "").startswith(field.split(".")[0]), error
    with db_session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Player)) == 0


def test_a_new_player_needs_a_client_key(client):
    response = client.post("/v1/players")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'
    text_body = client.post(
        "/v1/players",
        data="consent",
        headers={"X-API-Key": CLIENT_KEY},
        content_type="text/plain",
    )
    assert_error(text_body, 415)


def test_the_player_secret_is_never_in_a_recognition_answer(client, db_session_factory):
    player, secret = new_player(client)

    response = _post(client, {"drawing": LINE, "player_id": player}, **as_player(secret))

    assert response.status_code == 202, response.get_json()
    assert "player_secret" not in response.get_json()
    assert response.get_json()["player_id"] == player
    assert _doodles_of(db_session_factory, player) == 1


def test_squatting_a_player_is_refused_and_leaves_their_data_alone(client, db_session_factory):
    victim, secret = new_player(client, consent=GRANT)
    mine = _post(client, {"drawing": LINE, "player_id": victim}, **as_player(secret))
    assert mine.status_code == 202

    attempts = [
        _post(client, {"drawing": LINE, "player_id": victim}, key=SQUATTER_KEY),
        _post(
            client,
            {"drawing": LINE, "player_id": victim},
            key=SQUATTER_KEY,
            **as_player("not-the-secret"),
        ),
        _post(client, {"drawing": LINE, "player_id": victim}, **as_player(secret + "x")),
    ]
    image = io.BytesIO()
    Image.new("L", (64, 64), 255).save(image, format="PNG")
    png = client.post(
        f"/v1/recognitions?player_id={victim}",
        data=image.getvalue(),
        headers={"X-API-Key": SQUATTER_KEY},
        content_type="image/png",
    )

    for response in [*attempts, png]:
        error = assert_error(response, 401, "unauthorized")
        assert error["message"] == "player_id needs the player's X-Player-Secret", error
        assert response.headers["WWW-Authenticate"] == 'ApiKey header="X-Player-Secret"'
    assert _doodles_of(db_session_factory, victim) == 1
    exported = _export(client, victim, secret)
    assert [d["id"] for d in exported["recognitions"]] == [mine.get_json()["id"]]


def test_a_consent_block_without_the_secret_never_brings_back_a_withdrawn_consent(
    client, db_session_factory
):
    victim, secret = new_player(client, consent=GRANT)
    withdrawn = client.delete(f"/v1/players/{victim}/consent", headers=as_player(secret))
    assert withdrawn.status_code == 200 and withdrawn.get_json()["in_force"] is None

    override = _post(
        client, {"drawing": LINE, "player_id": victim, "consent": GRANT}, key=SQUATTER_KEY
    )

    assert_error(override, 401, "unauthorized")
    state = client.get(f"/v1/players/{victim}/consent", headers=as_player(secret)).get_json()
    assert state["in_force"] is None and len(state["history"]) == 1
    assert _doodles_of(db_session_factory, victim) == 0
    # With the secret, the player's own consent block does change it.
    mine = _post(
        client, {"drawing": LINE, "player_id": victim, "consent": GRANT}, **as_player(secret)
    )
    assert mine.status_code == 202
    with db_session_factory() as s:
        grants = s.scalars(select(Consent).where(Consent.player_id == victim)).all()
    assert sorted(g.withdrawn_at is None for g in grants) == [False, True]


def test_no_answer_tells_whether_a_player_id_exists(client, db_session_factory):
    known, secret = new_player(client)
    cases = {
        "unknown id": ("p_nobody-has-this-id-00", {}),
        "unknown id, some secret": ("p_nobody-has-this-id-00", as_player(secret)),
        "known id, no secret": (known, {}),
        "known id, wrong secret": (known, as_player("guess")),
    }
    answers = {}
    for name, (player_id, headers) in cases.items():
        response = _post(client, {"drawing": LINE, "player_id": player_id}, **headers)
        answers[name] = (
            response.status_code,
            response.get_json(),
            response.headers.get("WWW-Authenticate"),
        )

    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1, answers
    assert next(iter(answers.values()))[0] == 401
    # A recognition never creates a player, known or not.
    with db_session_factory() as s:
        assert set(s.scalars(select(Player.id))) == {known}
        assert s.scalar(select(func.count()).select_from(Recognition)) == 0


def test_a_new_player_answer_says_nothing_about_other_ids(client):
    """The answer to POST /v1/players is the same shape whoever exists: it takes no id."""
    first = client.post("/v1/players", headers={"X-API-Key": CLIENT_KEY})
    second = client.post("/v1/players", headers={"X-API-Key": SQUATTER_KEY})

    assert first.status_code == second.status_code == 201
    assert set(first.get_json()) == set(second.get_json()) == {"player_id", "player_secret"}
    assert first.get_json()["player_id"] != second.get_json()["player_id"]


def test_an_erased_player_cannot_be_named_any_more(client, db_session_factory):
    player, secret = new_player(client)
    with db_session_factory.begin() as s:
        s.get(Player, player).erased_at = func.now()

    response = _post(client, {"drawing": LINE, "player_id": player}, **as_player(secret))

    assert_error(response, 401, "unauthorized")
    assert _doodles_of(db_session_factory, player) == 0


def test_new_players_are_rate_limited_per_client_key_and_wrong_secrets_per_address(
    settings: Settings,
):
    """A client key may ask for players as often as it may send doodles; refused secrets
    count as failed authentications of the address, as on the player routes."""
    from api import create_app
    from api.resources import EXTENSION

    limited = replace(settings, rate_recognitions=Rate(3, 60), rate_auth_failures=Rate(2, 60))
    app = create_app(limited)
    try:
        client = app.test_client()
        answers = [client.post("/v1/players", headers={"X-API-Key": CLIENT_KEY}) for _ in range(4)]
        assert [r.status_code for r in answers] == [201, 201, 201, 429]
        assert answers[-1].headers["Retry-After"]
        player = answers[0].get_json()["player_id"]
        guesses = [
            _post(client, {"drawing": LINE, "player_id": player}, **as_player(f"guess-{n}"))
            for n in range(3)
        ]
        assert [r.status_code for r in guesses] == [401, 401, 429]
        assert "failed authentications" in guesses[-1].get_json()["error"]["message"]
    finally:
        app.extensions[EXTENSION].close()
