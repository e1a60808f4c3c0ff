"""Idempotency-Key on POST /v1/recognitions and POST /v1/players (issue 18): a retry with
the same key answers for what the first request made and records nothing twice, across
API processes; a key reused for another request is a 422; keys expire and are pruned."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from core.settings import Settings
from db.idempotency import prune_expired
from db.models import Consent, IdempotencyKey, Player, Recognition
from tests.fixtures.app import CLIENT_KEY, assert_error
from tests.fixtures.players import as_player, new_player

OTHER_KEY = "other-client-key"
LINE = [[[0, 50, 100], [0, 50, 100]]]
CIRCLE = [[[10, 40, 60, 10], [10, 5, 40, 10]]]
GRANT = {"version": "2026-11", "store": True, "train": False}


def _make_app(settings: Settings) -> Flask:
    from api import create_app

    app = create_app(replace(settings, client_keys=(CLIENT_KEY, OTHER_KEY)))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def apps(settings: Settings) -> Iterator[tuple[Flask, Flask]]:
    """Two API instances on the same Postgres and Redis, as two API processes are."""
    from api.resources import EXTENSION

    pair = (_make_app(settings), _make_app(settings))
    yield pair
    for app in pair:
        app.extensions[EXTENSION].close()


@pytest.fixture
def client(apps: tuple[Flask, Flask]) -> FlaskClient:
    return apps[0].test_client()


def _post(client: FlaskClient, body: dict, key: str | None, api_key: str = CLIENT_KEY, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(
        "/v1/recognitions",
        data=json.dumps(body),
        headers={"X-API-Key": api_key, **headers},
        content_type="application/json",
    )


def _new_player(client: FlaskClient, key: str | None, body: dict | None = None, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(
        "/v1/players",
        data=json.dumps(body or {}),
        headers={"X-API-Key": CLIENT_KEY, **headers},
        content_type="application/json",
    )


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_a_retry_answers_with_the_first_recognition_and_records_nothing_twice(
    apps, db_session_factory
):
    first_app, second_app = apps
    key = str(uuid.uuid4())

    first = _post(first_app.test_client(), {"drawing": LINE, "word": "star"}, key)
    # The client gave up on that answer; its retry reaches another API process.
    retry = _post(second_app.test_client(), {"drawing": LINE, "word": "star"}, key)

    assert first.status_code == 202, first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    assert retry.status_code == 202, retry.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json()["id"] == first.get_json()["id"]
    assert retry.get_json()["word"] == "star" and retry.get_json()["status"] == "queued"
    assert retry.headers["Location"] == first.headers["Location"]
    assert _count(db_session_factory, Recognition) == 1
    assert _count(db_session_factory, IdempotencyKey) == 1


def test_a_retry_with_the_players_consent_changes_nothing_more(client, db_session_factory):
    player, secret = new_player(client)
    body = {"drawing": LINE, "player_id": player, "consent": GRANT}
    key = "retry-me"

    first = _post(client, body, key, **as_player(secret))
    retry = _post(client, body, key, **as_player(secret))
    without_secret = _post(client, body, key)

    assert first.status_code == retry.status_code == 202
    assert retry.get_json()["id"] == first.get_json()["id"]
    # The replay asks for the player's secret again; the answer is the usual 401.
    error = assert_error(without_secret, 401, "unauthorized")
    assert error["message"] == "player_id needs the player's X-Player-Secret"
    assert _count(db_session_factory, Recognition) == 1
    assert _count(db_session_factory, Consent) == 1


def _race(
    apps: tuple[Flask, ...], send: Callable[[FlaskClient], TestResponse]
) -> list[tuple[int, Any]]:
    """`send` from two threads on each app at once (a barrier lines them up): the answers'
    statuses and bodies."""
    barrier = threading.Barrier(len(apps) * 2)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def one(app: Flask) -> None:
        client = app.test_client()
        barrier.wait()
        response = send(client)
        with lock:
            answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=one, args=(app,)) for app in apps for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_racing_retries_on_two_instances_make_one_recognition(apps, db_session_factory):
    """Two threads, two app instances, the same key at once: one row, one id for both."""
    key = str(uuid.uuid4())
    answers = _race(apps, lambda client: _post(client, {"drawing": CIRCLE}, key))
    assert [status for status, _ in answers] == [202] * 4, answers
    assert len({body["id"] for _, body in answers}) == 1, answers
    assert _count(db_session_factory, Recognition) == 1


def test_the_same_key_with_another_request_is_refused(client, db_session_factory):
    key = "reused"
    assert _post(client, {"drawing": LINE, "word": "star"}, key).status_code == 202

    answers = [
        _post(client, {"drawing": LINE, "word": "moon"}, key),  # another body
        client.post(  # another query
            "/v1/recognitions?word=moon",
            data=json.dumps({"drawing": LINE, "word": "star"}),
            headers={"X-API-Key": CLIENT_KEY, "Idempotency-Key": key},
            content_type="application/json",
        ),
        _new_player(client, key),  # another route
    ]

    for response in answers:
        error = assert_error(response, 422, "unprocessable")
        assert error["details"] == {"field": "Idempotency-Key", "reason": "key_reused"}
    assert _count(db_session_factory, Recognition) == 1
    assert _count(db_session_factory, Player) == 0


def test_keys_are_scoped_per_client_key(client, db_session_factory):
    key = "same-name"
    mine = _post(client, {"drawing": LINE}, key)
    theirs = _post(client, {"drawing": LINE}, key, api_key=OTHER_KEY)

    assert mine.status_code == theirs.status_code == 202
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert _count(db_session_factory, Recognition) == 2
    # Neither client can read the other's recognition through its key.
    read = client.get(f"/v1/recognitions/{mine.get_json()['id']}", headers={"X-API-Key": OTHER_KEY})
    assert read.status_code == 404


@pytest.mark.parametrize(
    "key",
    ["", " ", "x" * 256, "tab\there", "caf\u00e9", " leading", "trailing "],
    ids=["empty", "space", "256 long", "control", "non-ascii", "leading", "trailing"],
)
def test_a_malformed_key_is_a_400(client, db_session_factory, key):
    response = _post(client, {"drawing": LINE}, key)

    error = assert_error(response, 400, "invalid_request")
    assert error["details"]["field"] == "Idempotency-Key"
    assert _count(db_session_factory, Recognition) == 0
    assert_error(_new_player(client, key), 400, "invalid_request")


def test_the_longest_and_oddest_valid_keys_work(client):
    for key in ["x" * 255, "a", 'with spaces and !"#$%&()*+,-./:;<=>?@[\\]^_`{|}~']:
        first, retry = _post(client, {"drawing": LINE}, key), _post(client, {"drawing": LINE}, key)
        assert first.status_code == retry.status_code == 202, first.get_json()
        assert retry.get_json()["id"] == first.get_json()["id"]


def test_a_retried_new_player_gets_the_same_id_and_a_working_secret(apps, db_session_factory):
    first_app, second_app = apps
    key = str(uuid.uuid4())
    body = {"consent": GRANT}

    first = _new_player(first_app.test_client(), key, body)
    retry = _new_player(second_app.test_client(), key, body)

    assert first.status_code == retry.status_code == 201, retry.get_json()
    assert retry.get_json() == first.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Cache-Control"] == "no-store"
    assert _count(db_session_factory, Player) == 1
    assert _count(db_session_factory, Consent) == 1
    player, secret = first.get_json()["player_id"], first.get_json()["player_secret"]
    consent = first_app.test_client().get(
        f"/v1/players/{player}/consent", headers=as_player(secret)
    )
    assert consent.status_code == 200 and consent.get_json()["in_force"]["store"] is True
    # The same key with another body is refused; without a key, a new player each time.
    assert_error(_new_player(first_app.test_client(), key, {}), 422, "unprocessable")
    assert _new_player(first_app.test_client(), None).get_json()["player_id"] != player


def test_racing_new_players_with_one_key_make_one_player(apps, db_session_factory):
    key = str(uuid.uuid4())
    answers = _race(apps, lambda client: _new_player(client, key))
    assert [status for status, _ in answers] == [201] * 4, answers
    assert len({json.dumps(body, sort_keys=True) for _, body in answers}) == 1
    assert _count(db_session_factory, Player) == 1


def _age_keys(sessions: sessionmaker[Session], hours: float) -> None:
    with sessions.begin() as s:
        s.execute(
            text("UPDATE idempotency_keys SET created_at = now() - make_interval(secs => :secs)"),
            {"secs": hours * 3600},
        )


def test_an_expired_key_makes_something_new(client, settings, db_session_factory):
    key = "old-key"
    first = _post(client, {"drawing": LINE}, key)
    _age_keys(db_session_factory, settings.idempotency_ttl_hours + 1)

    again = _post(client, {"drawing": LINE}, key)

    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] != first.get_json()["id"]
    assert "Idempotent-Replayed" not in again.headers
    with db_session_factory() as s:
        (row,) = s.scalars(select(IdempotencyKey)).all()
        assert str(row.recognition_id) == again.get_json()["id"]
    # Expired, a recognition's key may even make a player, and the other way round.
    _age_keys(db_session_factory, settings.idempotency_ttl_hours + 1)
    assert _new_player(client, key).status_code == 201


def test_expired_keys_are_pruned_and_live_ones_kept(client, settings, db_session_factory):
    for n in range(5):
        assert _post(client, {"drawing": LINE}, f"old-{n}").status_code == 202
    _age_keys(db_session_factory, settings.idempotency_ttl_hours + 0.5)
    live = _post(client, {"drawing": LINE}, "live")
    assert live.status_code == 202

    with db_session_factory.begin() as s:
        first_batch = prune_expired(s, settings.idempotency_ttl_hours, limit=3)
    with db_session_factory.begin() as s:
        second_batch = prune_expired(s, settings.idempotency_ttl_hours, limit=3)

    assert (first_batch, second_batch) == (3, 2)
    with db_session_factory() as s:
        assert list(s.scalars(select(IdempotencyKey.key))) == ["live"]
    # Pruning a key never removes what it made.
    assert _count(db_session_factory, Recognition) == 6
    assert _post(client, {"drawing": LINE}, "live").get_json()["id"] == live.get_json()["id"]


def test_a_key_goes_with_the_recognition_it_made(client, db_session_factory):
    first = _post(client, {"drawing": LINE}, "k")
    with db_session_factory.begin() as s:
        s.execute(text("DELETE FROM recognitions"))  # as a retention or an erasure does

    assert _count(db_session_factory, IdempotencyKey) == 0
    again = _post(client, {"drawing": LINE}, "k")
    assert again.status_code == 202 and again.get_json()["id"] != first.get_json()["id"]


def test_the_retention_flow_prunes_expired_keys(flows_env, client, db_session_factory, monkeypatch):
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.setenv("DOODLE_IDEMPOTENCY_TTL_HOURS", "2")
    monkeypatch.setenv("DOODLE_RETENTION_DAYS", "0")  # keys are pruned even then
    assert _post(client, {"drawing": LINE}, "expired").status_code == 202
    _age_keys(db_session_factory, 3)
    assert _post(client, {"drawing": LINE}, "fresh").status_code == 202

    result = CliRunner().invoke(cli, ["flows", "run", "retention"])

    assert result.exit_code == 0, result.output
    headline = json.loads(result.output.strip().splitlines()[-1])
    assert headline["idempotency_keys_pruned"] == 1
    with db_session_factory() as s:
        assert list(s.scalars(select(IdempotencyKey.key))) == ["fresh"]
