"""Export (Art. 15 and 20): GET /v1/players/<id>/export and `doodle players export` give
everything held about the player, streamed, and nothing of anyone else. Real Postgres,
Redis and S3; doodles go through the API and the worker's batch path."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from cli.main import cli
from core.drawings import render_png
from core.keys import png_key
from core.storage import open_storage
from db import reviews
from db.models import Label, LabelSource, ModelVersionExample, Recognition
from services import players
from services.errors import UnknownPlayer
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error, post_recognition
from tests.fixtures.players import as_player, secret_for
from workers.recognize import recognize_batch

GRANT = {"version": "2026-11", "store": True, "train": True}


def post_strokes(client, drawing, player: str) -> dict:
    """A doodle of the player (made on first use), with their secret; the answer, and the
    secret as `player_secret`."""
    body = {"drawing": drawing, "word": "apple", "player_id": player, "consent": GRANT}
    secret = secret_for(client, player)
    return {**post_recognition(client, body, secret), "player_secret": secret}


def post_png(client, png: bytes, player: str) -> uuid.UUID:
    response = client.post(
        f"/v1/recognitions?player_id={player}&word=apple",
        data=png,
        headers={"X-API-Key": CLIENT_KEY, **as_player(secret_for(client, player))},
        content_type="image/png",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return uuid.UUID(response.get_json()["id"])


@pytest.fixture
def held(client, sample_drawings, worker_runtime, settings, db_session_factory, seed_version):
    """player-a's doodles in every place they can be held, beside player-b's."""
    drawings = [d["drawing"] for d in sample_drawings["apple"][:3]]
    first = post_strokes(client, drawings[0], "player-a")
    secret = first["player_secret"]
    stored = uuid.UUID(first["id"])
    neighbour = uuid.UUID(post_strokes(client, drawings[1], "player-b")["id"])
    # One batch: both doodles go to the same segment; the export picks player-a's line.
    report = recognize_batch(worker_runtime, [stored, neighbour])
    assert report.done == 2 and worker_runtime.objects.flush()
    queued = uuid.UUID(post_strokes(client, drawings[2], "player-a")["id"])  # in the row
    png_in_row = render_png(drawings[0], size=64)
    png_queued = post_png(client, png_in_row, "player-a")
    # A PNG already written to object storage (as the worker does with consent to store).
    png_stored_bytes = render_png(drawings[1], size=64)
    png_stored = post_png(client, png_stored_bytes, "player-a")
    key = png_key("player-a", png_stored)
    open_storage(settings.object_store_url).put(key, png_stored_bytes, "image/png")
    with db_session_factory.begin() as s:
        s.execute(
            update(Recognition)
            .where(Recognition.id == png_stored)
            .values(png_key=key, stored_at=Recognition.created_at, payload_png=None)
        )
        s.add(Label(recognition_id=stored, label="apple", source=LabelSource.prompt, actor="t"))
        s.add(Label(recognition_id=neighbour, label="cup", source=LabelSource.prompt, actor="t"))
        assert reviews.queue_review(s, stored, "scribble")
        assert reviews.queue_review(s, neighbour, "near_empty")
        s.add(ModelVersionExample(model_version_id=seed_version, recognition_id=stored))
        s.add(ModelVersionExample(model_version_id=seed_version, recognition_id=neighbour))
    return {
        "secret": secret,
        "drawings": drawings,
        "stored": stored,
        "neighbour": neighbour,
        "queued": queued,
        "png_queued": (png_queued, png_in_row),
        "png_stored": (png_stored, png_stored_bytes),
        "seed_version": seed_version,
    }


def check_document(text: str, held: dict) -> dict:
    assert str(held["neighbour"]) not in text and "player-b" not in text
    doc = json.loads(text)
    assert doc["format"] == "doodle-player-export/1"
    assert doc["player"]["id"] == "player-a"
    assert doc["consents"]["in_force"]["version"] == "2026-11"
    assert len(doc["consents"]["history"]) == 1
    by_id = {r["id"]: r for r in doc["recognitions"]}
    png_queued, png_in_row = held["png_queued"]
    png_stored, png_stored_bytes = held["png_stored"]
    assert set(by_id) == {str(i) for i in (held["stored"], held["queued"], png_queued, png_stored)}
    stored = by_id[str(held["stored"])]
    assert stored["stored_at"] is not None
    assert stored["drawing"] == held["drawings"][0]  # from its segment in object storage
    assert stored["prediction"]["label"] and stored["model_version"] == held["seed_version"]
    assert len(base64.b64decode(stored["raster_28x28_base64"])) == 784
    assert by_id[str(held["queued"])]["drawing"] == held["drawings"][2]  # from the row
    assert base64.b64decode(by_id[str(png_queued)]["png_base64"]) == png_in_row
    assert base64.b64decode(by_id[str(png_stored)]["png_base64"]) == png_stored_bytes
    assert [(x["recognition_id"], x["label"]) for x in doc["labels"]] == [
        (str(held["stored"]), "apple")
    ]
    assert [(x["recognition_id"], x["reason"]) for x in doc["reviews"]] == [
        (str(held["stored"]), "scribble")
    ]
    assert doc["model_versions_trained_on"] == [
        {"model_version": held["seed_version"], "recognition_id": str(held["stored"])}
    ]
    return doc


def test_the_player_exports_everything_held_about_them(client, held):
    response = client.get(
        "/v1/players/player-a/export", headers={"X-Player-Secret": held["secret"]}
    )

    assert response.status_code == 200
    assert response.is_streamed and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    check_document(response.get_data(as_text=True), held)


def test_the_export_comes_in_chunks(held, settings, db_session_factory):
    storage = open_storage(settings.object_store_url)
    chunks = list(players.export(db_session_factory, storage, "player-a"))
    # At least one chunk per doodle: nothing waits for the whole document.
    assert len(chunks) > 4
    check_document(b"".join(chunks).decode(), held)


def test_an_unknown_player_has_no_export(settings, db_session_factory):
    storage = open_storage(settings.object_store_url)
    with pytest.raises(UnknownPlayer):
        players.export(db_session_factory, storage, "nobody")


def test_an_admin_exports_for_a_player(client, held):
    response = client.get(
        "/v1/players/player-a/export", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200
    check_document(response.get_data(as_text=True), held)
    assert_error(
        client.get("/v1/players/nobody/export", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}),
        404,
    )


def test_the_cli_exports_the_same_document(held, settings, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    monkeypatch.setenv("STORAGE_URL", settings.object_store_url)
    monkeypatch.setenv("DOODLE_HOME", str(settings.home))
    out = tmp_path / "export.json"

    result = CliRunner().invoke(cli, ["players", "export", "player-a", "--out", str(out)])

    assert result.exit_code == 0, result.output
    check_document(out.read_text(), held)
    assert not (tmp_path / "export.json.partial").exists()
    missing = CliRunner().invoke(cli, ["players", "export", "nobody"])
    assert missing.exit_code == 1 and "no player" in missing.output


def test_an_object_gone_meanwhile_is_exported_as_null(held, settings, db_session_factory):
    storage = open_storage(settings.object_store_url)
    png_stored, _ = held["png_stored"]
    storage.delete(png_key("player-a", png_stored))

    doc = json.loads(b"".join(players.export(db_session_factory, storage, "player-a")))

    by_id = {r["id"]: r for r in doc["recognitions"]}
    assert by_id[str(png_stored)]["png_base64"] is None
    assert by_id[str(held["stored"])]["drawing"] == held["drawings"][0]


def test_a_401_names_the_player_secret(client):
    response = client.get("/v1/players/player-a/consent")
    assert_error(response, 401)
    assert "X-Player-Secret" in response.headers["WWW-Authenticate"]
