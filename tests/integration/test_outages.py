"""A dependency that goes away is an outage, not a bug: every route answers 503 with
Retry-After in the usual error shape (never a 500), readiness names the dependency
without naming hosts or paths, and the API recovers by itself when it is back."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask.testing import FlaskClient

from core.settings import Settings
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error
from tests.fixtures.proxy import TcpProxy

CLIENT = {"X-API-Key": CLIENT_KEY}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SQUARE = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]

# Every route that reads or writes Postgres, as a client or an admin calls it.
DATABASE_ROUTES = [
    ("GET", "/v1/words", CLIENT, None),
    ("POST", "/v1/recognitions", CLIENT, {"drawing": SQUARE, "player_id": "p-1"}),
    ("GET", f"/v1/recognitions/{uuid.uuid4()}", CLIENT, None),
    ("GET", "/v1/admin/models", ADMIN, None),
    ("GET", "/v1/admin/models/1", ADMIN, None),
    ("POST", "/v1/admin/models/1/promote", ADMIN, {}),
    ("POST", "/v1/admin/models/rollback", ADMIN, {}),
    ("GET", "/v1/admin/models/aliases/production/history", ADMIN, None),
    ("GET", "/v1/admin/reviews", ADMIN, None),
    ("POST", f"/v1/admin/reviews/{uuid.uuid4()}", ADMIN, {"label": "cat"}),
    ("GET", f"/v1/admin/reviews/{uuid.uuid4()}/drawing.png", ADMIN, None),
]


@contextmanager
def _app_behind(settings: Settings, field: str) -> Iterator[tuple[FlaskClient, TcpProxy]]:
    """An app whose `field` URL (database_url, redis_url, storage_url) goes through a
    proxy the test can switch off."""
    from api import create_app
    from api.resources import EXTENSION

    with TcpProxy(getattr(settings, field)) as proxy:
        # No worker runs here: readiness judges the dependencies alone (ready_min_workers=0).
        app = create_app(dataclasses.replace(settings, ready_min_workers=0, **{field: proxy.url}))
        try:
            yield app.test_client(), proxy
        finally:
            app.extensions[EXTENSION].close()


def _call(client: FlaskClient, method: str, path: str, headers: dict, body: object):
    data = None if body is None else json.dumps(body)
    return client.open(
        path, method=method, headers=headers, data=data, content_type="application/json"
    )


def _assert_unavailable(response) -> None:
    assert_error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


def _assert_readiness_names_only(client: FlaskClient, down: str, hidden: list[str]) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"][down]["ok"] is False
    text = response.get_data(as_text=True)
    for secret in hidden:
        assert secret not in text, f"readiness names {secret!r}: {text}"


def test_postgres_down_is_503_on_every_route_then_recovers(settings, seed_version):
    with _app_behind(settings, "database_url") as (client, proxy):
        assert client.get("/v1/words", headers=CLIENT).status_code == 200
        proxy.stop()
        for method, path, headers, body in DATABASE_ROUTES:
            response = _call(client, method, path, headers, body)
            assert response.status_code == 503, (method, path, response.get_data(as_text=True))
            _assert_unavailable(response)
        _assert_readiness_names_only(client, "database", [str(proxy.port), "127.0.0.1"])
        proxy.start()
        assert client.get("/v1/words", headers=CLIENT).status_code == 200


def test_redis_down_accepts_recognitions_and_refuses_guesses(settings, seed_version):
    with _app_behind(settings, "redis_url") as (client, proxy):
        proxy.stop()
        # The row is the record of work: accepted, and sent once Redis is back.
        posted = _call(client, "POST", "/v1/recognitions", CLIENT, {"drawing": SQUARE})
        assert posted.status_code == 202, posted.get_data(as_text=True)
        _assert_unavailable(_call(client, "POST", "/v1/guesses", CLIENT, {"drawing": SQUARE}))
        _assert_readiness_names_only(client, "redis", [str(proxy.port), "127.0.0.1"])
        proxy.start()
        assert client.get("/readyz").get_json()["checks"]["redis"]["ok"] is True


def test_storage_down_fails_readiness_without_naming_the_endpoint(settings, seed_version):
    with _app_behind(settings, "storage_url") as (client, proxy):
        assert client.get("/readyz").status_code == 200
        proxy.stop()
        _assert_readiness_names_only(client, "storage", [str(proxy.port), "127.0.0.1", "s3"])


def test_postgres_restart_while_idle_costs_no_request(settings, seed_version, monkeypatch):
    """Connections are pinged only after sitting idle (a ping per request was a round trip
    per doodle); one that died while idle is replaced before a request sees it."""
    import db.session

    monkeypatch.setattr(db.session, "IDLE_PING_SECONDS", 0.05)
    with _app_behind(settings, "database_url") as (client, proxy):
        assert client.get("/v1/words", headers=CLIENT).status_code == 200
        proxy.stop()  # drops the pooled connection, as a restart of Postgres does
        proxy.start()
        time.sleep(0.1)
        response = client.get("/v1/words", headers=CLIENT)
        assert response.status_code == 200, response.get_data(as_text=True)
