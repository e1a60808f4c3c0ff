"""Who may use which admin route: every operation of the app's own /openapi.json that
takes a bearer token is called with no token, a wrong one, a malformed one, a client key
and a reviewer's token; routes added later are walked too, without touching this test.

Admin-only operations (their security names no ReviewerBearer) refuse reviewers with
403; reviewers' operations let them through (whatever the answer is then, it is not
401/403). Every route of the url map under /v1/admin must be in the document.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.auth import Role, key_id, role_for_token
from core.settings import Settings
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error

REVIEWER_TOKEN = "test-reviewer-token"
PARAMS = {
    "recognition_id": str(uuid.uuid4()),
    "erasure_id": str(uuid.uuid4()),
    "version": "1",
    "alias": "production",
    "player_id": "player-1",
}
REFUSED = {
    "no token": ({}, 401),
    "wrong token": ({"Authorization": "Bearer not-a-token"}, 401),
    "not bearer": ({"Authorization": f"Basic {ADMIN_TOKEN}"}, 401),
    "client key": ({"X-API-Key": CLIENT_KEY}, 401),
    # A client key does not make a wrong token right.
    "client key and wrong token": (
        {"X-API-Key": CLIENT_KEY, "Authorization": "Bearer not-a-token"},
        401,
    ),
}


@pytest.fixture
def roles_app(settings: Settings) -> Iterator[Flask]:
    """The app with a reviewer token, and no limit on failed attempts (this test fails
    on purpose hundreds of times)."""
    from api import create_app
    from api.resources import EXTENSION

    app = create_app(replace(settings, reviewer_tokens=(REVIEWER_TOKEN,), rate_auth_failures=None))
    yield app
    app.extensions[EXTENSION].close()


def _bearer_operations(client: FlaskClient) -> list[tuple[str, str, str, bool]]:
    """(method, url, operationId, admin only) of every operation that takes a bearer."""
    spec = client.get("/openapi.json").get_json()
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            schemes = {name for alternative in op.get("security", []) for name in alternative}
            if "AdminBearer" not in schemes:
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: PARAMS.get(m[1], "1"), path)
            out.append((method.upper(), url, op["operationId"], "ReviewerBearer" not in schemes))
    return out


def _call(client: FlaskClient, method: str, url: str, headers: dict[str, str]) -> Any:
    body = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
    return client.open(url, method=method, headers=headers, **body)


def test_the_walk_covers_every_admin_route(roles_app):
    client = roles_app.test_client()
    walked = {url for _, url, _, _ in _bearer_operations(client)}
    admin_rules = [
        rule.rule for rule in roles_app.url_map.iter_rules() if rule.rule.startswith("/v1/admin")
    ]
    assert admin_rules, "no admin routes?"
    for rule in admin_rules:
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: PARAMS.get(m[1], "1"), rule)
        assert url in walked, f"{rule} is routed but /openapi.json gives it no bearer security"
    ops = {op for _, _, op, _ in _bearer_operations(client)}
    # The ones this issue names: reviewers browse and decide, only admins move models.
    assert {"listDoodles", "decideDoodles", "promoteModel", "rollbackModel"} <= ops


@pytest.mark.parametrize("case", REFUSED.keys())
def test_every_bearer_route_refuses_a_missing_or_wrong_credential(roles_app, case):
    headers, status = REFUSED[case]
    client = roles_app.test_client()
    for method, url, op, _ in _bearer_operations(client):
        response = _call(client, method, url, headers)
        assert response.status_code == status, (op, method, url, response.get_data(as_text=True))
        assert_error(response, status)


def test_reviewers_are_refused_admin_only_routes_and_let_through_theirs(roles_app):
    client = roles_app.test_client()
    reviewer = {"Authorization": f"Bearer {REVIEWER_TOKEN}"}
    admin_only = reviewers = 0
    for method, url, op, only_admins in _bearer_operations(client):
        response = _call(client, method, url, reviewer)
        if only_admins:
            admin_only += 1
            error = assert_error(response, 403, "forbidden")
            assert error["details"] == {"role": "reviewer", "needed": "admin"}, op
        else:
            reviewers += 1
            assert response.status_code not in (401, 403), (op, response.get_data(as_text=True))
    assert admin_only >= 3 and reviewers >= 6


def test_admins_pass_every_bearer_route(roles_app):
    client = roles_app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for method, url, op, _ in _bearer_operations(client):
        response = _call(client, method, url, admin)
        assert response.status_code not in (401, 403), (op, response.get_data(as_text=True))


def test_role_for_token_names_the_role_and_a_short_id():
    settings = Settings(admin_tokens=("a1", "both"), reviewer_tokens=("r1", "both"))
    assert role_for_token(settings, "a1") == (Role.ADMIN, key_id("a1"))
    assert role_for_token(settings, "r1") == (Role.REVIEWER, key_id("r1"))
    assert role_for_token(settings, "both") == (Role.ADMIN, key_id("both"))
    assert role_for_token(settings, "nope") is None
    assert role_for_token(settings, "") is None
    assert Role.ADMIN.allows(Role.REVIEWER) and not Role.REVIEWER.allows(Role.ADMIN)
