"""/v1/admin/models and `doodle models promote|rollback|history` on real Postgres and S3."""

from __future__ import annotations

import getpass
import hashlib
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.auth import key_id
from cli.main import cli
from db import registry
from db.models import AuditLog
from db.registry import Alias
from ml.network import seed_classes, seed_weights_path
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, IMPORT_ACTOR, assert_error, import_version

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ACTOR = f"admin:{key_id(ADMIN_TOKEN)}"


@pytest.fixture
def second_version(settings, seed_version) -> int:
    """The seed weights registered again, as a version that is not in production."""
    return import_version(settings, seed_weights_path().read_bytes(), seed_classes(), source="copy")


def _audit(db_session_factory) -> list[AuditLog]:
    with db_session_factory() as s:
        return list(s.scalars(select(AuditLog).order_by(AuditLog.id)))


ROUTES = [
    ("get", "/v1/admin/models"),
    ("get", "/v1/admin/models/1"),
    ("post", "/v1/admin/models/1/promote"),
    ("post", "/v1/admin/models/rollback"),
    ("get", "/v1/admin/models/aliases/production/history"),
]
BAD_AUTH = {
    "missing": {},
    "wrong token": {"Authorization": "Bearer nope"},
    "not bearer": {"Authorization": f"Basic {ADMIN_TOKEN}"},
    "empty bearer": {"Authorization": "Bearer "},
    "client key": {"X-API-Key": CLIENT_KEY},
}


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("headers", BAD_AUTH.values(), ids=BAD_AUTH.keys())
def test_every_route_needs_an_admin_token(
    client, db_session_factory, seed_version, method, path, headers
):
    response = getattr(client, method)(path, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    with db_session_factory() as s:
        assert [h.to_version_id for h in registry.alias_history(s, Alias.PRODUCTION)] == [
            seed_version
        ]
    assert _audit(db_session_factory) == []


def test_no_admin_tokens_configured_means_401_for_everyone(app, seed_version):
    from api.resources import EXTENSION

    resources = app.extensions[EXTENSION]
    resources.settings = resources.settings.with_services(admin_tokens=())
    assert_error(app.test_client().get("/v1/admin/models", headers=AUTH), 401, "unauthorized")


def test_list_and_read_versions(client, seed_version, second_version):
    response = client.get("/v1/admin/models", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body["production"] == seed_version
    versions = body["versions"]
    assert [v["version"] for v in versions] == [second_version, seed_version]
    seed = versions[1]
    assert seed["aliases"] == [Alias.PRODUCTION] and versions[0]["aliases"] == []
    assert seed["classes"] == seed_classes()
    assert seed["parent"] is None and seed["metrics"] == {}
    assert {"created_at", "checksum", "architecture", "source"} <= set(seed)

    one = client.get(f"/v1/admin/models/{seed_version}", headers=AUTH).get_json()
    assert one["version"] == seed_version and one["dataset_manifest"] == {}
    assert_error(client.get("/v1/admin/models/999", headers=AUTH), 404, "not_found")
    assert_error(client.get("/v1/admin/models/abc", headers=AUTH), 404, "not_found")


def test_promote_and_rollback(client, db_session_factory, seed_version, second_version):
    response = client.post(
        f"/v1/admin/models/{second_version}/promote", json={"reason": "try it"}, headers=AUTH
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["action"], body["from"], body["to"], body["moved"]) == (
        "promote",
        seed_version,
        second_version,
        True,
    )
    assert body["move"]["actor"] == ACTOR and body["move"]["reason"] == "try it"
    assert body["model"]["aliases"] == [Alias.PRODUCTION]
    words = client.get("/v1/words").get_json()
    assert words["model_version"] == second_version

    # Promoting it again changes nothing and records nothing.
    again = client.post(f"/v1/admin/models/{second_version}/promote", headers=AUTH).get_json()
    assert (again["moved"], again["move"]) == (False, None)

    response = client.post("/v1/admin/models/rollback", headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["action"], body["from"], body["to"]) == ("rollback", second_version, seed_version)
    assert body["move"]["reason"].startswith("rollback of #")
    assert client.get("/v1/words").get_json()["model_version"] == seed_version

    # The seed's import is the first move: there is nothing before it.
    error = assert_error(client.post("/v1/admin/models/rollback", headers=AUTH), 409, "conflict")
    assert error["details"] == {"alias": Alias.PRODUCTION}

    history = client.get("/v1/admin/models/aliases/production/history", headers=AUTH)
    moves = history.get_json()["history"]
    assert [(m["from"], m["to"]) for m in moves] == [
        (second_version, seed_version),
        (seed_version, second_version),
        (None, seed_version),
    ]
    assert [m["actor"] for m in moves[:2]] == [ACTOR, ACTOR]
    assert ADMIN_TOKEN not in json.dumps(moves)

    audit = _audit(db_session_factory)
    assert [(a.actor, a.action) for a in audit] == [
        (ACTOR, "model.promote"),
        (ACTOR, "model.rollback"),
    ]
    assert audit[0].subject == "model_alias:production"
    assert audit[0].details["from_version"] == seed_version
    assert audit[0].details["to_version"] == second_version
    assert audit[0].details["reason"] == "try it"
    assert audit[1].details["history_id"] == moves[0]["id"]


def test_promote_unknown_version_is_404(client, db_session_factory, seed_version):
    assert_error(client.post("/v1/admin/models/999/promote", headers=AUTH), 404, "not_found")
    assert_error(client.post("/v1/admin/models/x1/promote", headers=AUTH), 404, "not_found")
    assert _audit(db_session_factory) == []


def test_rollback_with_no_production_is_409(client):
    assert_error(client.post("/v1/admin/models/rollback", headers=AUTH), 409, "conflict")


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b'["reason"]',
        b'{"reason": 7}',
        b'{"why": "x"}',
        b'{"reason": "' + b"r" * 1001 + b'"}',
    ],
)
def test_bad_move_bodies_are_400(client, db_session_factory, seed_version, second_version, data):
    response = client.post(
        f"/v1/admin/models/{second_version}/promote",
        data=data,
        headers=AUTH,
        content_type="application/json",
    )
    assert_error(response, 400, "invalid_request")
    assert _audit(db_session_factory) == []


def test_history_of_an_unknown_alias_is_404(client, seed_version):
    assert_error(
        client.get("/v1/admin/models/aliases/nope/history", headers=AUTH), 404, "not_found"
    )


def test_cli_promote_rollback_history(
    settings, monkeypatch, db_session_factory, seed_version, second_version
):
    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    monkeypatch.setenv("DOODLE_HOME", str(settings.home))
    runner = CliRunner()
    actor = f"cli:{getpass.getuser()}"

    result = runner.invoke(cli, ["models", "promote", str(second_version), "--reason", "why not"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert (line["from"], line["to"], line["moved"]) == (seed_version, second_version, True)

    result = runner.invoke(cli, ["models", "rollback"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert (line["from"], line["to"]) == (second_version, seed_version)

    result = runner.invoke(cli, ["models", "rollback"])
    assert result.exit_code == 1 and "no earlier version" in result.output
    result = runner.invoke(cli, ["models", "promote", "999"])
    assert result.exit_code == 1 and "does not exist" in result.output

    result = runner.invoke(cli, ["models", "history"])
    assert result.exit_code == 0, result.output
    moves = [json.loads(x) for x in result.output.strip().splitlines() if x.startswith("{")]
    assert [(m["from"], m["to"], m["actor"]) for m in moves] == [
        (second_version, seed_version, actor),
        (seed_version, second_version, actor),
        (None, seed_version, IMPORT_ACTOR),
    ]
    assert moves[1]["reason"] == "why not"
    assert [(a.actor, a.action) for a in _audit(db_session_factory)] == [
        (actor, "model.promote"),
        (actor, "model.rollback"),
    ]
    result = runner.invoke(cli, ["models", "history", "--alias", Alias.CANDIDATE])
    assert result.exit_code == 0 and result.output.strip() == ""


def test_cli_import_and_list(settings, monkeypatch, tmp_path):
    for name, value in {
        "DATABASE_URL": settings.db_url,
        "STORAGE_URL": settings.object_store_url,
        "DOODLE_HOME": str(settings.home),
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    weights = seed_weights_path()
    classes = ",".join(seed_classes())

    def run(*args: str):
        return runner.invoke(cli, ["models", "import", str(weights), *args])

    result = run("--classes", classes, "--alias", Alias.PRODUCTION)
    assert result.exit_code == 0, result.output
    imported = json.loads(result.output.strip().splitlines()[-1])
    assert imported == {
        "version": imported["version"],
        "alias": Alias.PRODUCTION,
        "imported": True,
        "checksum": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
    result = run("--classes", classes, "--alias", Alias.PRODUCTION, "--if-missing")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {
        "version": imported["version"],
        "alias": Alias.PRODUCTION,
        "imported": False,
    }

    result = run("--classes", "cup,cup")
    assert result.exit_code == 2
    assert "Invalid value for --classes: class names must be non-empty and distinct" in (
        result.output
    )
    result = run("--classes", "cup,hat,tree")
    assert result.exit_code == 1
    assert "weights do not load as a 3-class network" in result.output

    result = runner.invoke(cli, ["models", "list"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.output.strip().splitlines() if x.startswith("{")]
    assert (line["version"], line["aliases"], line["classes"]) == (
        imported["version"],
        [Alias.PRODUCTION],
        len(seed_classes()),
    )
    assert line["source"] == str(weights)
