"""Input that used to get a 500 (issue 7), and rules the contract states: each gets a clear
4xx naming the field, records nothing, and /openapi.json states the rule it applies."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select

from api.contract import limits
from core.drawings import render_png
from db.models import Recognition
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error

HEADERS = {"X-API-Key": CLIENT_KEY}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LINE = [[[0, 9], [0, 9]]]


def _count(db_session_factory) -> int:
    with db_session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(Recognition)) or 0)


def _post(client, body, **kw):
    return client.post(
        "/v1/recognitions",
        data=json.dumps(body),
        headers=HEADERS,
        content_type="application/json",
        **kw,
    )


CONSENT = {"store": True, "train": True, "version": "2026-11"}
BAD_TEXT = [
    ("NUL in word", {"drawing": LINE, "word": "st\u0000ar"}, "word"),
    ("control char in word", {"drawing": LINE, "word": "st\u001bar"}, "word"),
    # 64 characters, but 128 once lower-cased: the column holds the lower case.
    ("64 dotted capital I", {"drawing": LINE, "word": "\u0130" * 64}, "word"),
    ("blank word", {"drawing": LINE, "word": "   "}, "word"),
    (
        "NUL in consent version",
        {"drawing": LINE, "player_id": "p", "consent": {**CONSENT, "version": "20\u000026"}},
        "consent.version",
    ),
    # `$` of a Python regex matches before a final newline; the player id must not.
    ("player_id ending in a newline", {"drawing": LINE, "player_id": "player-1\n"}, "player_id"),
]


@pytest.mark.parametrize(("name", "body", "field"), BAD_TEXT, ids=[c[0] for c in BAD_TEXT])
def test_bad_text_is_400_naming_the_field(client, db_session_factory, name, body, field):
    error = assert_error(_post(client, body), 400, "invalid_request")
    assert error["details"]["field"] == field
    assert field in error["message"]
    assert _count(db_session_factory) == 0


def test_a_64_character_word_that_stays_64_is_accepted_lower_cased(client, db_session_factory):
    word = "Ä" * limits.MAX_WORD_LENGTH
    response = _post(client, {"drawing": LINE, "word": word})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["word"] == word.lower()
    assert_error(_post(client, {"drawing": LINE, "word": word + "a"}), 400)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("word=st%00ar", "word"),
        ("player_id=player-1%0A", "player_id"),
        ("word=" + "%C4%B0" * limits.MAX_WORD_LENGTH, "word"),
    ],
)
def test_bad_text_in_a_png_query_is_400(client, db_session_factory, query, field):
    png = render_png([[[0, 255], [0, 255]]])
    response = client.post(
        f"/v1/recognitions?{query}", data=png, headers=HEADERS, content_type="image/png"
    )
    assert assert_error(response, 400, "invalid_request")["details"]["field"] == field
    assert _count(db_session_factory) == 0


def _png_header_only_bomb(side: int) -> bytes:
    """A valid 1-bit PNG of side x side white pixels: ~90 KB that decode to 400 M pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\xff" * ((side + 7) // 8)  # filter byte, then the row's bits
    squeeze = zlib.compressobj(9)
    data = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_a_decompression_bomb_png_is_400_before_decoding(client, db_session_factory):
    bomb = _png_header_only_bomb(20_000)
    assert len(bomb) < 200_000
    # What PIL alone would do with it: the uncaught error that used to be a 500.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb))
    response = client.post("/v1/recognitions", data=bomb, headers=HEADERS, content_type="image/png")
    error = assert_error(response, 400, "invalid_request")
    assert (error["details"]["width"], error["details"]["height"]) == (20_000, 20_000)
    assert error["details"]["max_side"] == limits.MAX_PNG_SIDE
    assert _count(db_session_factory) == 0


def _chunked(client, data: bytes, path: str = "/v1/recognitions"):
    """A body with no Content-Length, as gunicorn hands over a chunked request."""
    return client.post(
        path,
        input_stream=io.BytesIO(data),
        headers={**HEADERS, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_413_not_bad_json(client, settings, db_session_factory):
    data = b'{"drawing": [' + b" " * (2 * settings.max_body_bytes) + b"]}"
    response = _chunked(client, data)
    error = assert_error(response, 413)
    assert error["details"]["max_bytes"] == settings.max_body_bytes
    assert _count(db_session_factory) == 0


def test_a_chunked_body_within_the_limit_is_read_whole(client, settings, db_session_factory):
    # Padding puts the drawing past the first 64 KB read: all of it must be read.
    data = b"{" + b" " * (200 * 1024) + json.dumps({"drawing": LINE}).encode()[1:]
    response = _chunked(client, data)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert _count(db_session_factory) == 1


def test_guesses_bound_chunked_bodies_too(client, settings):
    data = b'{"drawing": [' + b" " * (2 * settings.max_body_bytes) + b"]}"
    assert_error(_chunked(client, data, "/v1/guesses"), 413)


@pytest.mark.parametrize(
    ("method", "path", "headers", "allowed"),
    [
        ("TRACE", "/v1/recognitions", HEADERS, {"POST"}),
        ("TRACE", "/healthz", {}, {"GET", "HEAD"}),
        ("GET", "/v1/admin/models/rollback", ADMIN, {"POST"}),
        ("GET", "/v1/admin/models/rollback", {}, {"POST"}),
        ("DELETE", "/v1/admin/models/1", ADMIN, {"GET", "HEAD"}),
    ],
)
def test_405_names_the_allowed_methods_in_allow(client, method, path, headers, allowed):
    response = client.open(path, method=method, headers=headers)
    error = assert_error(response, 405, "method_not_allowed")
    sent = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= sent and method not in sent
    assert set(error["details"]["allowed"]) == sent


def test_model_version_ids_beyond_an_integer_are_404_not_500(client):
    for raw in ["1" * 10, "99999999999999999999", "-1", "abc"]:
        assert_error(client.get(f"/v1/admin/models/{raw}", headers=ADMIN), 404)


def test_an_alias_with_a_nul_is_404_not_500(client):
    assert_error(client.get("/v1/admin/models/aliases/pro%00d/history", headers=ADMIN), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "\u0130" * limits.LABEL_LENGTH}, "label"),
        ({"label": "ca\u0000t"}, "label"),
        ({"label": "cat", "discard": True}, "label"),  # one or the other
        ({"discard": False}, "discard"),
    ],
)
def test_review_decisions_validate_before_any_lookup(client, body, field):
    response = client.post(
        "/v1/admin/reviews/00000000-0000-0000-0000-000000000000",
        data=json.dumps(body),
        headers=ADMIN,
        content_type="application/json",
    )
    error = assert_error(response, 400, "invalid_request")
    assert error["details"]["field"] == field


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=201", "limit"), ("status=x", "status"), ("after=a%00", "after")],
)
def test_review_list_query_is_validated(client, query, field):
    error = assert_error(client.get(f"/v1/admin/reviews?{query}", headers=ADMIN), 400)
    assert error["details"]["field"] == field


def test_a_move_reason_holding_nul_is_400(client):
    response = client.post(
        "/v1/admin/models/rollback",
        data=json.dumps({"reason": "oops\u0000"}),
        headers=ADMIN,
        content_type="application/json",
    )
    assert assert_error(response, 400)["details"]["field"] == "reason"


def test_the_document_states_the_limits_the_app_applies(client, settings):
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    strokes = schemas["Strokes"]
    assert strokes["maxItems"] == settings.max_strokes
    assert str(settings.max_points) in strokes["description"]
    assert "two distinct" in strokes["description"]
    assert strokes["items"]["items"]["items"]["maximum"] == settings.max_coordinate
    request = schemas["RecognitionRequest"]["properties"]
    assert request["drawing"] == {"$ref": "#/components/schemas/Strokes"}
    (word,) = [b for b in request["word"]["anyOf"] if b.get("type") == "string"]
    assert word["maxLength"] == limits.MAX_WORD_LENGTH
    assert word["pattern"] == limits.TEXT_PATTERN
    (player,) = [b for b in request["player_id"]["anyOf"] if b.get("type") == "string"]
    assert player["pattern"] == limits.PLAYER_ID_PATTERN
    assert schemas["Consent"]["properties"]["version"]["maxLength"] == (
        limits.MAX_CONSENT_VERSION_LENGTH
    )
    assert schemas["LabelDecision"]["properties"]["label"]["maxLength"] == limits.LABEL_LENGTH
    reviews = spec["paths"]["/v1/admin/reviews"]["get"]["parameters"]
    after = next(p for p in reviews if p["name"] == "after")
    assert after["schema"]["pattern"] == limits.CURSOR_PATTERN
    limit = next(p for p in reviews if p["name"] == "limit")
    assert limit["schema"]["maximum"] == limits.MAX_PAGE
    version = spec["paths"]["/v1/admin/models/{version}"]["get"]["parameters"][0]
    assert version["schema"]["maximum"] == limits.MAX_VERSION_ID
    assert set(spec["components"]["securitySchemes"]) == {
        "ApiKey",
        "AdminBearer",
        "ReviewerBearer",
        "PlayerSecret",
    }


def test_the_document_follows_the_settings(app, settings):
    from dataclasses import replace

    from api import create_app

    tight = create_app(replace(settings, max_strokes=3, max_points=7))
    try:
        strokes = tight.test_client().get("/openapi.json").get_json()["components"]["schemas"]
        assert strokes["Strokes"]["maxItems"] == 3
        assert "at most 7 points" in strokes["Strokes"]["description"]
        response = tight.test_client().post(
            "/v1/recognitions",
            data=json.dumps({"drawing": LINE * 4}),
            headers=HEADERS,
            content_type="application/json",
        )
        assert assert_error(response, 400)["details"]["limit"] == 3
    finally:
        tight.extensions["doodle"].close()


def test_unknown_or_bad_query_parameters_are_400(client, db_session_factory):
    error = assert_error(client.get("/v1/admin/reviews?colour=red", headers=ADMIN), 400)
    assert error["details"]["field"] == "colour"
    # The PNG parameters are checked with a JSON body too: one rule for the operation.
    error = assert_error(_post(client, {"drawing": LINE}, query_string={"player_id": ""}), 400)
    assert error["details"]["field"] == "player_id"
    assert _count(db_session_factory) == 0


def test_a_forged_cursor_beyond_the_database_range_is_400_not_500(client):
    """The cursor decodes (a time and a review id), but the id overflows Postgres' bigint:
    a value the database refuses is the client's input, answered 400."""
    raw = json.dumps(["2026-01-01T00:00:00+00:00", 10**30]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = client.get(f"/v1/admin/reviews?after={cursor}", headers=ADMIN)
    assert_error(response, 400, "invalid_request")
