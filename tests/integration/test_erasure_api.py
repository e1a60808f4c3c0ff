"""DELETE /v1/players/<id> and GET /v1/erasures/<id>: who may ask, 202 then the receipt,
idempotence, and the task message sent to the maintenance queue."""

from __future__ import annotations

import base64
import json
import uuid

import redis

from core.tasks import MAINTENANCE_QUEUE
from services.erasure import work_erasure
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, assert_error
from tests.fixtures.players import as_player, secret_for
from tests.integration.test_erasure_removal import CIRCLE
from workers.runtime import WorkerRuntime

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONSENT = {"store": True, "train": True, "version": "2026-11"}


def _new_player(client, player_id: str) -> str:
    """The player (with this id), and a first doodle of theirs; returns their secret."""
    secret = secret_for(client, player_id)
    response = client.post(
        "/v1/recognitions",
        data=json.dumps({"drawing": CIRCLE, "player_id": player_id, "consent": CONSENT}),
        headers={"X-API-Key": CLIENT_KEY, **as_player(secret)},
        content_type="application/json",
    )
    assert response.status_code == 202
    return secret


def _queued_erasures(redis_client: redis.Redis) -> list[str]:
    return [
        json.loads(base64.b64decode(json.loads(m)["body"]))[0][0]
        for m in redis_client.lrange(MAINTENANCE_QUEUE, 0, -1)
    ]


def test_delete_accepts_then_the_location_gives_the_receipt(
    client, worker_runtime: WorkerRuntime, redis_client: redis.Redis, seed_version: int
) -> None:
    secret = _new_player(client, "p-api-erase")
    mine = {"X-Player-Secret": secret}

    first = client.delete("/v1/players/p-api-erase", headers=mine)
    assert first.status_code == 202, first.get_data(as_text=True)
    body = first.get_json()
    assert first.headers["Location"] == f"/v1/erasures/{body['id']}"
    assert body["status"] == "pending" and body["requested_by"] == "player"
    assert "p-api-erase" not in first.get_data(as_text=True)
    again = client.delete("/v1/players/p-api-erase", headers=mine)
    assert again.status_code == 202 and again.headers["Location"] == first.headers["Location"]
    assert body["id"] in _queued_erasures(redis_client)
    polled = client.get(first.headers["Location"])
    assert polled.status_code == 200 and polled.get_json()["status"] == "pending"

    work_erasure(worker_runtime, redis_client, uuid.UUID(body["id"]))

    done = client.get(first.headers["Location"]).get_json()
    assert done["status"] == "done" and done["completed_at"]
    assert done["receipt"]["deleted"]["recognitions"] == 1
    assert done["receipt"]["deleted"]["players"] == 1
    assert "p-api-erase" not in json.dumps(done)
    # The player's secret went with them; an admin asking again gets the receipt.
    assert_error(client.delete("/v1/players/p-api-erase", headers=mine), 403)
    by_admin = client.delete("/v1/players/p-api-erase", headers=ADMIN)
    assert by_admin.status_code == 200
    assert by_admin.headers["Location"] == first.headers["Location"]
    assert by_admin.get_json()["receipt"] == done["receipt"]


def test_who_may_ask_for_an_erasure(client, seed_version: int) -> None:
    secret = _new_player(client, "p-guarded")
    other = _new_player(client, "p-other")
    assert_error(client.delete("/v1/players/p-guarded"), 401)
    assert_error(client.delete("/v1/players/p-guarded", headers={"X-API-Key": CLIENT_KEY}), 401)
    assert_error(client.delete("/v1/players/p-guarded", headers={"X-Player-Secret": other}), 403)
    assert_error(client.delete("/v1/players/nobody", headers={"X-Player-Secret": secret}), 403)
    assert_error(client.delete("/v1/players/nobody", headers=ADMIN), 404)
    by_admin = client.delete("/v1/players/p-guarded", headers=ADMIN)
    assert by_admin.status_code == 202
    assert by_admin.get_json()["requested_by"].startswith("admin:")


def test_unknown_or_malformed_erasure_ids_are_404(client) -> None:
    assert_error(client.get(f"/v1/erasures/{uuid.uuid4()}"), 404, "not_found")
    assert_error(client.get("/v1/erasures/not-a-uuid"), 404, "not_found")
