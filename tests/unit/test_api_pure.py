"""API logic that needs no service: Prefer parsing, validation, OpenAPI coverage, errors."""

from __future__ import annotations

import re

import pytest

from api import create_app
from api.contract.drawing import check_drawing
from api.errors import InvalidRequest
from api.schemas import parse_json_guess
from api.waiting import requested_wait
from core.settings import Settings
from db.models import InputFormat

SETTINGS = Settings(
    database_url="postgresql://unused/db", redis_url="redis://unused:1/0", client_keys=("k",)
)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 0.0),
        ("", 0.0),
        ("wait=5", 5.0),
        ("respond-async, wait=3", 3.0),
        ("WAIT = 2.5", 2.5),
        ('wait="4"', 4.0),
        ("wait=600", 10.0),  # capped
        ("wait=soon", 0.0),  # nonsense is ignored, as RFC 7240 asks
        ("handling=lenient", 0.0),
        ("nowait=5", 0.0),
    ],
)
def test_prefer_wait_parsing(header, seconds):
    assert requested_wait(header, cap=10.0) == seconds


def test_simplified_and_raw_drawings_are_told_apart():
    assert check_drawing([[[0, 255], [0, 100]]], SETTINGS).input_format is InputFormat.simplified
    assert check_drawing([[[10, 300], [5, 100]]], SETTINGS).input_format is InputFormat.raw
    timed = [[[0, 255], [0, 100], [0, 16]]]
    assert check_drawing(timed, SETTINGS).input_format is InputFormat.raw


def test_validation_counts_points_across_strokes():
    check = check_drawing([[[0, 1, 2], [0, 1, 2]], [[5, 6], [5, 6]]], SETTINGS)
    assert (check.strokes, check.points) == (2, 5)
    with pytest.raises(InvalidRequest):
        check_drawing([[[0, 1], [0, 1]]] * 3, Settings(max_points=5))


def test_json_body_rejects_nan_and_deep_nesting():
    with pytest.raises(InvalidRequest):
        parse_json_guess(b'{"drawing": [[[0, Infinity], [0, 1]]]}', SETTINGS)
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        parse_json_guess(b'{"drawing": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", SETTINGS)


def test_openapi_describes_every_route():
    app = create_app(SETTINGS)
    spec = app.test_client().get("/openapi.json").get_json()
    routes = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        # The admin page's HTML routes (blueprint "web", /admin) are not part of the API.
        if rule.endpoint != "static" and not rule.endpoint.startswith("web.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert routes == described


def test_errors_without_services_have_the_one_shape():
    client = create_app(SETTINGS).test_client()
    for response, status in [
        (client.get("/nope"), 404),
        (client.put("/healthz"), 405),
        (client.post("/v1/recognitions", data=b"{}", content_type="application/json"), 401),
    ]:
        assert response.status_code == status
        assert set(response.get_json()["error"]) == {"code", "message", "details"}
