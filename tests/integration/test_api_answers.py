"""Answers with data in them match the document's schemas: what schemathesis cannot reach
on an empty database (a finished recognition, reviews, the next page of the queue)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from db import reviews
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, recognize
from tests.fixtures.players import as_player, secret_for

HEADERS = {"X-API-Key": CLIENT_KEY}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def conforms(client):
    """`conforms(answer, "Recognition")`: the answer's JSON is valid for that schema."""
    spec = client.get("/openapi.json").get_json()

    def check(response, name: str) -> dict[str, Any]:
        assert response.status_code < 300, response.get_data(as_text=True)
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        body = response.get_json()
        errors = list(Draft202012Validator(schema).iter_errors(body))
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
        return body

    return check


@pytest.fixture
def finished(client, worker_runtime, sample_drawings, seed_version):
    """Doodles posted with consent and finished by the worker; returns their ids."""

    def make(count: int) -> list[uuid.UUID]:
        ids = []
        for n in range(count):
            body = {
                "drawing": sample_drawings["apple"][n]["drawing"],
                "word": "apple",
                "player_id": f"player-{n}",
                "consent": {"store": True, "train": True, "version": "2026-11"},
            }
            response = client.post(
                "/v1/recognitions",
                data=json.dumps(body),
                headers={**HEADERS, **as_player(secret_for(client, body["player_id"]))},
                content_type="application/json",
            )
            rid = uuid.UUID(response.get_json()["id"])
            assert recognize(worker_runtime, rid) == "done"
            ids.append(rid)
        return ids

    return make


def test_a_finished_recognition_matches_the_document(client, conforms, finished):
    (rid,) = finished(1)
    body = conforms(client.get(f"/v1/recognitions/{rid}", headers=HEADERS), "Recognition")
    assert body["status"] == "done" and body["prediction"]["top"]


def test_review_pages_and_decisions_match_the_document(
    client, conforms, finished, db_session_factory
):
    ids = finished(2)
    with db_session_factory.begin() as s:
        for rid in ids:
            assert reviews.queue_review(s, rid, "scribble")
    first = conforms(client.get("/v1/admin/reviews?limit=1", headers=ADMIN), "ReviewPage")
    assert len(first["reviews"]) == 1 and first["next"]
    # The cursor the list made is one the document's pattern accepts, and leads on.
    after = client.get(f"/v1/admin/reviews?limit=1&after={first['next']}", headers=ADMIN)
    second = conforms(after, "ReviewPage")
    assert [r["recognition_id"] for r in first["reviews"] + second["reviews"]] == [
        str(rid) for rid in ids
    ]
    decided = client.post(
        f"/v1/admin/reviews/{ids[0]}",
        data=json.dumps({"label": "Apple"}),
        headers=ADMIN,
        content_type="application/json",
    )
    assert conforms(decided, "Review")["label"] == "apple"
    resolved = client.get("/v1/admin/reviews?status=resolved", headers=ADMIN)
    assert conforms(resolved, "ReviewPage")["reviews"][0]["decision"] == "label"
