"""POST/GET /v1/recognitions against real Postgres, Redis and S3 (moto over HTTP)."""

from __future__ import annotations

import io
import json
import threading
import uuid

import pytest
from PIL import Image
from sqlalchemy import func, select

from core import segments
from core.drawings import render_png
from core.storage import open_storage
from db.models import Consent, Player, Recognition, RecognitionStatus
from tests.fixtures.app import CLIENT_KEY, assert_error, recognize
from tests.fixtures.players import as_player, seeded_player

HEADERS = {"X-API-Key": CLIENT_KEY}


@pytest.fixture
def apple(sample_drawings) -> list:
    return sample_drawings["apple"][0]["drawing"]


def _count(settings_factory) -> int:
    with settings_factory() as s:
        return int(s.scalar(select(func.count()).select_from(Recognition)) or 0)


def _post(client, body, headers=HEADERS, **kw):
    return client.post(
        "/v1/recognitions",
        data=json.dumps(body),
        headers=headers,
        content_type="application/json",
        **kw,
    )


def test_post_records_and_answers_202_with_location(
    client, db_session_factory, apple, seed_version
):
    response = _post(client, {"drawing": apple, "word": "Apple"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert response.headers["Location"] == f"/v1/recognitions/{body['id']}"
    with db_session_factory() as s:
        row = s.get(Recognition, uuid.UUID(body["id"]))
        assert row is not None and row.word == "apple" and row.payload == apple
        assert row.status is RecognitionStatus.queued
    polled = client.get(response.headers["Location"], headers=HEADERS)
    assert polled.status_code == 200 and polled.get_json()["id"] == body["id"]


def test_worker_recognises_and_get_returns_the_result(
    client, worker_runtime, db_session_factory, apple, seed_version, settings
):
    rid = _post(client, {"drawing": apple, "word": "apple"}).get_json()["id"]
    assert recognize(worker_runtime, uuid.UUID(rid)) == "done"
    body = client.get(f"/v1/recognitions/{rid}", headers=HEADERS).get_json()
    assert body["status"] == "done"
    assert body["prediction"]["label"] == "apple"
    assert 0 < body["prediction"]["confidence"] <= 1
    assert body["prediction"]["top"][0]["label"] == "apple"
    assert len(body["prediction"]["top"]) == 3
    assert body["model_version"] == seed_version
    assert {"queue_ms", "raster_ms", "inference_ms"} <= set(body["timings"])
    # Without consent nothing is kept beyond the row, and the row forgets the strokes.
    assert body["stored"] is False
    assert all(k.startswith("models/") for k in open_storage(settings.object_store_url).list(""))
    with db_session_factory() as s:
        assert s.get(Recognition, uuid.UUID(rid)).payload is None


def test_consent_to_store_keeps_the_strokes_in_a_segment(
    client, worker_runtime, db_session_factory, apple, seed_version, settings
):
    player = {**HEADERS, **as_player(seeded_player(db_session_factory, "player-1"))}
    body = {
        "drawing": apple,
        "word": "apple",
        "player_id": "player-1",
        "consent": {"store": True, "train": True, "version": "2026-11"},
    }
    rid = _post(client, body, player).get_json()["id"]
    assert recognize(worker_runtime, uuid.UUID(rid)) == "done"
    storage = open_storage(settings.object_store_url)
    assert client.get(f"/v1/recognitions/{rid}", headers=HEADERS).get_json()["stored"] is True
    with db_session_factory() as s:
        row = s.get(Recognition, uuid.UUID(rid))
        assert row.consent_store and row.consent_train
        # Once the object is written the row forgets the strokes and says where they are.
        assert row.stored_at is not None and row.payload is None
        assert row.strokes_key.startswith("segments/") and row.png_key is None
        # The batch's segment: a line a doodle, with its player (a PNG is drawn on demand).
        document = segments.find(storage.get(row.strokes_key), rid)
        assert document == {
            "id": rid,
            "player_id": "player-1",
            "format": "simplified",
            "drawing": apple,
        }
        consent = s.get(Consent, row.consent_id)
        assert (consent.player_id, consent.version, consent.store, consent.train) == (
            "player-1",
            "2026-11",
            True,
            True,
        )
    # The same grant again reuses the consent row; a new one records a new grant.
    _post(client, body, player)
    _post(
        client, {**body, "consent": {"store": True, "train": False, "version": "2026-11"}}, player
    )
    with db_session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Consent)) == 2
        assert s.scalar(select(func.count()).select_from(Player)) == 1


def test_raw_strokes_with_times_are_simplified_by_the_worker(
    client, worker_runtime, shared_data, seed_version
):
    line = (shared_data / "quickdraw" / "raw" / "star.ndjson").read_text().splitlines()[0]
    raw = json.loads(line)["drawing"]
    response = _post(client, {"drawing": raw})
    assert response.status_code == 202
    rid = response.get_json()["id"]
    recognize(worker_runtime, uuid.UUID(rid))
    assert (
        client.get(f"/v1/recognitions/{rid}", headers=HEADERS).get_json()["prediction"]["label"]
        == "star"
    )


def test_png_body_is_recognised(client, worker_runtime, sample_drawings, seed_version):
    png = render_png(sample_drawings["star"][1]["drawing"])
    response = client.post(
        "/v1/recognitions?word=star", data=png, headers=HEADERS, content_type="image/png"
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    rid = response.get_json()["id"]
    recognize(worker_runtime, uuid.UUID(rid))
    body = client.get(f"/v1/recognitions/{rid}", headers=HEADERS).get_json()
    assert body["prediction"]["label"] == "star" and body["word"] == "star"


def test_prefer_wait_answers_200_when_the_worker_finishes_in_time(
    client, worker_runtime, db_session_factory, apple, seed_version
):
    """A stand-in worker thread picks up the queued row, as a Celery worker would."""

    def work() -> None:
        for _ in range(200):
            with db_session_factory() as s:
                rid = s.scalar(select(Recognition.id).limit(1))
            if rid is not None:
                recognize(worker_runtime, rid)
                return
            threading.Event().wait(0.02)

    thread = threading.Thread(target=work)
    thread.start()
    response = _post(client, {"drawing": apple}, headers={**HEADERS, "Prefer": "wait=5"})
    thread.join()
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "done"
    assert response.get_json()["prediction"]["label"] == "apple"


def test_prefer_wait_gives_up_with_202(client, apple, seed_version):
    response = _post(client, {"drawing": apple}, headers={**HEADERS, "Prefer": "wait=0.3"})
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "missing"), ({"X-API-Key": "nope"}, "unknown")],
)
def test_missing_or_wrong_key_is_401(client, apple, db_session_factory, headers, message):
    error = assert_error(_post(client, {"drawing": apple}, headers=headers), 401, "unauthorized")
    assert message in error["message"]
    assert _count(db_session_factory) == 0


BAD_BODIES = [
    ("not json", b"{not json"),
    ("NaN constant", b'{"drawing": [[[0, NaN], [0, 1]]]}'),
    ("array body", b"[1, 2]"),
    ("no drawing", b'{"word": "apple"}'),
    ("unknown field", b'{"drawing": [[[0, 9], [0, 9]]], "colour": "red"}'),
    ("drawing not a list", b'{"drawing": "apple"}'),
    ("empty drawing", b'{"drawing": []}'),
    ("single point", b'{"drawing": [[[5], [5]]]}'),
    ("same point twice", b'{"drawing": [[[5, 5], [5, 5]]]}'),
    ("ragged stroke", b'{"drawing": [[[0, 1, 2], [0, 1]]]}'),
    ("one row", b'{"drawing": [[[0, 1, 2]]]}'),
    ("mixed arity", b'{"drawing": [[[0, 9], [0, 9]], [[0, 9], [0, 9], [0, 5]]]}'),
    ("string coordinate", b'{"drawing": [[[0, "9"], [0, 9]]]}'),
    ("bool coordinate", b'{"drawing": [[[0, true], [0, 9]]]}'),
    ("huge coordinate", b'{"drawing": [[[0, 1e300], [0, 9]]]}'),
    ("empty stroke", b'{"drawing": [[[], []]]}'),
    ("bad word", b'{"drawing": [[[0, 9], [0, 9]]], "word": 7}'),
    ("bad player", b'{"drawing": [[[0, 9], [0, 9]]], "player_id": "a b/c"}'),
    ("consent not object", b'{"drawing": [[[0, 9], [0, 9]]], "player_id": "p", "consent": true}'),
    (
        "consent without player",
        b'{"drawing": [[[0, 9], [0, 9]]],'
        b' "consent": {"store": true, "train": false, "version": "1"}}',
    ),
    (
        "train without store",
        b'{"drawing": [[[0, 9], [0, 9]]], "player_id": "p",'
        b' "consent": {"store": false, "train": true, "version": "1"}}',
    ),
    (
        "consent without version",
        b'{"drawing": [[[0, 9], [0, 9]]], "player_id": "p",'
        b' "consent": {"store": true, "train": true}}',
    ),
]


@pytest.mark.parametrize(("name", "data"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_400_and_record_nothing(client, db_session_factory, name, data):
    response = client.post(
        "/v1/recognitions", data=data, headers=HEADERS, content_type="application/json"
    )
    assert_error(response, 400)
    assert _count(db_session_factory) == 0


def test_too_many_strokes_and_points_are_400(client, settings, db_session_factory):
    strokes = [[[0, 9], [0, 9]]] * (settings.max_strokes + 1)
    error = assert_error(_post(client, {"drawing": strokes}), 400)
    assert error["details"]["limit"] == settings.max_strokes
    long_stroke = [[list(range(settings.max_points + 1)), [0] * (settings.max_points + 1)]]
    error = assert_error(_post(client, {"drawing": long_stroke}), 400)
    assert error["details"]["limit"] == settings.max_points
    assert _count(db_session_factory) == 0


def test_body_over_the_limit_is_413(client, settings, db_session_factory):
    data = b'{"drawing": [' + b" " * settings.max_body_bytes + b"]}"
    response = client.post(
        "/v1/recognitions", data=data, headers=HEADERS, content_type="application/json"
    )
    assert_error(response, 413)
    assert _count(db_session_factory) == 0


def test_non_png_image_and_other_types_are_rejected(client, db_session_factory):
    jpeg = io.BytesIO()
    Image.new("RGB", (10, 10)).save(jpeg, format="JPEG")
    assert_error(
        client.post(
            "/v1/recognitions", data=jpeg.getvalue(), headers=HEADERS, content_type="image/png"
        ),
        400,
    )
    truncated = render_png([[[0, 255], [0, 255]]])[:60]
    assert_error(
        client.post("/v1/recognitions", data=truncated, headers=HEADERS, content_type="image/png"),
        400,
    )
    assert_error(
        client.post("/v1/recognitions", data=b"x", headers=HEADERS, content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    assert _count(db_session_factory) == 0


def test_unknown_ids_are_404(client, db_session_factory):
    assert_error(client.get(f"/v1/recognitions/{uuid.uuid4()}", headers=HEADERS), 404, "not_found")
    assert_error(client.get("/v1/recognitions/not-a-uuid", headers=HEADERS), 404, "not_found")
    assert_error(client.get("/v1/nothing-here"), 404)
    assert_error(client.delete("/v1/recognitions"), 405)


def test_database_down_is_503_with_retry_after(settings, apple):
    """An outage, not a bug: nothing was accepted, and the client is told to come back."""
    from dataclasses import replace

    from api import create_app

    down = replace(settings, database_url="postgresql://root@127.0.0.1:1/nowhere")
    app = create_app(down)
    try:
        response = _post(app.test_client(), {"drawing": apple})
    finally:
        app.extensions["doodle"].close()
    error = assert_error(response, 503, "unavailable")
    assert "try again" in error["message"]
    assert response.headers["Retry-After"] == "2"


def test_broker_down_still_accepts_and_the_row_waits_for_the_sweeper(
    settings, apple, db_session_factory
):
    """The row is the record of work: with Redis down it is committed and answered 202,
    and the sweeper sends it once the broker is back."""
    from dataclasses import replace

    from api import create_app

    down = replace(settings, redis_url="redis://127.0.0.1:1/0")
    app = create_app(down)
    try:
        response = _post(
            app.test_client(), {"drawing": apple}, headers={**HEADERS, "Prefer": "wait=1"}
        )
    finally:
        app.extensions["doodle"].close()
    assert response.status_code == 202, response.get_data(as_text=True)
    with db_session_factory() as s:
        row = s.get(Recognition, uuid.UUID(response.get_json()["id"]))
        assert row is not None and row.status is RecognitionStatus.queued
