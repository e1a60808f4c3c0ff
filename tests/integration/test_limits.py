"""Rate limits on real Redis: per client key on recognitions and guesses, and failed
authentications per address; and a client key reads only its own recognitions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from flask import Flask

from core.rates import Rate
from core.settings import Settings
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error

OTHER_KEY = "another-client-key"
SQUARE = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]


@pytest.fixture
def limited(settings: Settings) -> Iterator[Flask]:
    from api import create_app
    from api.resources import EXTENSION

    app = create_app(
        dataclasses.replace(
            settings,
            client_keys=(CLIENT_KEY, OTHER_KEY),
            rate_recognitions=Rate(5, 60),
            rate_guesses=Rate(2, 60),
            rate_auth_failures=Rate(3, 60),
            guess_timeout_seconds=0.05,
        )
    )
    yield app
    app.extensions[EXTENSION].close()


def _post(client, key: str, address: str = "10.0.0.1"):
    return client.post(
        "/v1/recognitions",
        json={"drawing": SQUARE},
        headers={"X-API-Key": key},
        environ_base={"REMOTE_ADDR": address},
    )


def _assert_limited(response, limit: str) -> None:
    error = assert_error(response, 429, "too_many_requests")
    assert error["details"]["limit"] == limit
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_a_key_over_its_rate_gets_429_and_other_keys_do_not(limited):
    client = limited.test_client()
    assert [_post(client, CLIENT_KEY).status_code for _ in range(5)] == [202] * 5
    _assert_limited(_post(client, CLIENT_KEY), "5/minute")
    assert _post(client, OTHER_KEY).status_code == 202


def test_guesses_have_their_own_rate(limited):
    client = limited.test_client()
    statuses = [
        client.post("/v1/guesses", json={"drawing": SQUARE}, headers={"X-API-Key": CLIENT_KEY})
        for _ in range(3)
    ]
    # No worker answers here: the first two time out (503); the third is over the rate.
    assert [r.status_code for r in statuses[:2]] == [503, 503]
    _assert_limited(statuses[2], "2/minute")
    assert _post(client, CLIENT_KEY).status_code == 202  # recognitions are counted apart


def test_failed_authentications_block_the_address_even_for_a_right_key(limited):
    client = limited.test_client()
    wrong = [_post(client, "guess-1", "10.0.0.9"), _post(client, "", "10.0.0.9")]
    admin = client.get(
        "/v1/admin/models",
        headers={"Authorization": "Bearer wrong"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert [r.status_code for r in [*wrong, admin]] == [401, 401, 401]
    _assert_limited(_post(client, "guess-2", "10.0.0.9"), "3/minute")
    _assert_limited(_post(client, CLIENT_KEY, "10.0.0.9"), "3/minute")
    blocked_admin = client.get(
        "/v1/admin/models",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    _assert_limited(blocked_admin, "3/minute")
    # Another address is not affected.
    assert _post(client, CLIENT_KEY, "10.0.0.10").status_code == 202


def test_a_key_reads_only_its_own_recognitions(limited):
    client = limited.test_client()
    posted = _post(client, CLIENT_KEY)
    location = posted.headers["Location"]
    mine = client.get(location, headers={"X-API-Key": CLIENT_KEY})
    assert mine.status_code == 200 and mine.get_json()["id"] == posted.get_json()["id"]
    assert_error(client.get(location, headers={"X-API-Key": OTHER_KEY}), 404, "not_found")
