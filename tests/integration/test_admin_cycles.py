"""`/v1/admin/cycles` with the real app on real Postgres: admins ask for a cycle (never two
at once), reviewers and admins follow them, nobody else sees them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from api.auth import key_id
from db.models import AuditLog, TrainingRun
from services import cycles
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error

BASE = "/v1/admin/cycles"
REVIEWER_TOKEN = "test-cycles-reviewer-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REVIEWER = {"Authorization": f"Bearer {REVIEWER_TOKEN}"}
ACTOR = f"admin:{key_id(ADMIN_TOKEN)}"


@pytest.fixture
def app(settings) -> Iterator[Flask]:
    from api import create_app
    from api.resources import EXTENSION

    app = create_app(replace(settings, reviewer_tokens=(REVIEWER_TOKEN,)))
    app.config["TESTING"] = True
    yield app
    app.extensions[EXTENSION].close()


def _runs(sessions) -> list[TrainingRun]:
    with sessions() as s:
        return list(s.scalars(select(TrainingRun).order_by(TrainingRun.id)))


def test_an_admin_asks_for_a_cycle_and_asking_again_names_the_same_one(
    client: FlaskClient, db_session_factory
):
    first = client.post(BASE, json={"reason": "five new words drawn"}, headers=ADMIN)

    assert first.status_code == 202, first.get_json()
    body = first.get_json()
    cycle = body["cycle"]
    assert body["existing"] is False
    assert first.headers["Location"] == f"{BASE}/{cycle['id']}"
    assert (cycle["status"], cycle["requested_by"], cycle["reason"]) == (
        "requested",
        ACTOR,
        "five new words drawn",
    )
    assert cycle["started_at"] is None and cycle["promoted"] is None

    again = client.post(BASE, headers=ADMIN)  # no body: a reason is optional

    assert again.status_code == 200
    assert again.get_json()["existing"] is True
    assert again.get_json()["cycle"]["id"] == cycle["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert [r.id for r in _runs(db_session_factory)] == [cycle["id"]]
    with db_session_factory() as s:
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "cycle.request")).all()
        assert [(a.actor, a.details["reason"]) for a in audits] == [(ACTOR, "five new words drawn")]


def test_asking_while_a_cycle_runs_names_the_running_one(client, db_session_factory):
    with cycles.hold_cycle(db_session_factory, actor="schedule", reason="nightly") as held:
        assert isinstance(held, cycles.CycleRun)
        answer = client.post(BASE, json={}, headers=ADMIN)
        assert answer.status_code == 200
        assert answer.get_json()["cycle"]["id"] == held.id
        assert answer.get_json()["cycle"]["status"] == "running"
        listed = client.get(BASE, headers=REVIEWER).get_json()
        assert listed["active"] == held.id
        cycles.finish_cycle(db_session_factory, held.id, "skipped", {"promoted": False}, None)
    # Finished: the next ask is a new cycle.
    fresh = client.post(BASE, json={"reason": "again"}, headers=ADMIN)
    assert fresh.status_code == 202
    assert fresh.get_json()["cycle"]["id"] != held.id


def test_reviewers_and_admins_follow_cycles(client, db_session_factory):
    with cycles.hold_cycle(db_session_factory, actor="trigger", reason="230 new labels") as held:
        assert isinstance(held, cycles.CycleRun)
        cycles.set_stage(db_session_factory, held.id, "finetune")
        running = client.get(f"{BASE}/{held.id}", headers=REVIEWER)
        assert running.status_code == 200
        assert (running.get_json()["status"], running.get_json()["stage"]) == (
            "running",
            "finetune",
        )
        report = {"promoted": True, "reasons": ["new words pass"], "candidate_version": None}
        cycles.finish_cycle(db_session_factory, held.id, "promoted", report, None)
    asked = client.post(BASE, headers=ADMIN).get_json()["cycle"]

    listed = client.get(f"{BASE}?limit=5", headers=ADMIN)

    assert listed.status_code == 200
    body = listed.get_json()
    assert [c["id"] for c in body["cycles"]] == [asked["id"], held.id]
    assert body["active"] == asked["id"]
    done = body["cycles"][1]
    assert (done["status"], done["promoted"], done["stage"]) == ("promoted", True, None)
    assert "new words pass" in done["summary"]
    assert (
        client.get(f"{BASE}?limit=1", headers=REVIEWER).get_json()["cycles"][0]["id"]
        == (asked["id"])
    )


def test_a_reviewer_may_not_ask_for_a_cycle(client, db_session_factory):
    answer = client.post(BASE, json={"reason": "please"}, headers=REVIEWER)

    body = assert_error(answer, 403, "forbidden")
    assert body["details"] == {"role": "reviewer", "needed": "admin"}
    assert _runs(db_session_factory) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": CLIENT_KEY}],
    ids=["missing", "wrong token", "client key"],
)
def test_every_route_needs_a_token(client, db_session_factory, headers):
    run = cycles.request_cycle(db_session_factory, actor="trigger", reason="x")
    for response in [
        client.post(BASE, json={}, headers=headers),
        client.get(BASE, headers=headers),
        client.get(f"{BASE}/{run.id}", headers=headers),
    ]:
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert [r.id for r in _runs(db_session_factory)] == [run.id]


def test_an_unknown_cycle_is_404(client, seed_version):
    assert_error(client.get(f"{BASE}/12345", headers=ADMIN), 404, "not_found")
    assert client.get(f"{BASE}/abc", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b'{"reason": 5}', "application/json", "reason"),
        (b'{"why": "x"}', "application/json", "why"),
        (b"{not json", "application/json", None),
        (b"reason=x", "text/plain", "body"),
        (b'{"reason": "' + b"x" * 1001 + b'"}', "application/json", "reason"),
    ],
    ids=["not text", "unknown field", "bad json", "not json", "too long"],
)
def test_bad_bodies_are_400(client, db_session_factory, body, content_type, field):
    answer = client.post(BASE, data=body, content_type=content_type, headers=ADMIN)

    error = assert_error(answer, 400)
    if field is not None:
        assert error["details"].get("field") == field, error
    assert _runs(db_session_factory) == []


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "colour=red"])
def test_bad_list_queries_are_400(client, seed_version, query):
    assert_error(client.get(f"{BASE}?{query}", headers=ADMIN), 400)
