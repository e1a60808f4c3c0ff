"""What a run logs, read back: no secret, no player id, no strokes in any line of the API
or the worker, even at DEBUG, on errors and on the player routes (whose paths hold the
player id); and the request id of a doodle shows up in the worker's lines about it."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests

from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY

JSON_LOGS = {"DOODLE_LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}


def _lines(text: str) -> list[dict]:
    """Our JSON lines (gunicorn's own error log stays text)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_logs_hold_no_secret_player_id_or_strokes(stack, sample_drawings, settings):
    # The worker first: the API is ready once a live worker consumes each batch queue.
    stack.start_worker("worker", **JSON_LOGS)
    stack.wait_worker_ready("worker")
    stack.start_api(**JSON_LOGS)
    url = stack.base_url
    drawing = sample_drawings["star"][0]["drawing"]
    headers = {"X-API-Key": CLIENT_KEY, "Prefer": "wait=10"}
    consent = {"store": True, "train": True, "version": "2026-11"}
    made = requests.post(
        f"{url}/v1/players",
        json={"consent": consent},
        headers={**headers, "Idempotency-Key": "log-test-player"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    player, player_secret = made.json()["player_id"], made.json()["player_secret"]
    mine = {"X-Player-Secret": player_secret}
    for i in range(3):
        answer = requests.post(
            f"{url}/v1/recognitions",
            json={"drawing": drawing, "player_id": player, "word": "star", "consent": consent},
            headers={**headers, **mine, "X-Request-ID": f"trace-{i}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Request-ID"] == f"trace-{i}"
    # A doodle naming the player without the secret is refused (and logged without either).
    unproven = {"drawing": drawing, "player_id": player}
    refused = requests.post(f"{url}/v1/recognitions", json=unproven, headers=headers, timeout=30)
    assert refused.status_code == 401, refused.text
    # The player's routes, with the right secret and a wrong one.
    assert requests.get(f"{url}/v1/players/{player}/consent", headers=mine).status_code == 200
    assert requests.get(f"{url}/v1/players/{player}/export", headers=mine).status_code == 200
    wrong = {"X-Player-Secret": "not-" + player_secret}
    assert requests.get(f"{url}/v1/players/{player}/export", headers=wrong).status_code == 403
    withdrawn = requests.delete(f"{url}/v1/players/{player}/consent", headers=mine)
    assert withdrawn.status_code in (200, 204), withdrawn.text
    # Errors of every kind: a bad body, a wrong key, a wrong admin token, an unknown id.
    bad = {"drawing": [[[1, 2], [3]]], "player_id": player}
    assert requests.post(f"{url}/v1/recognitions", json=bad, headers=headers).status_code == 400
    wrong_key = {"X-API-Key": "not-" + CLIENT_KEY}
    assert requests.post(f"{url}/v1/recognitions", json=bad, headers=wrong_key).status_code == 401
    wrong_admin = {"Authorization": f"Bearer not-{ADMIN_TOKEN}"}
    assert requests.get(f"{url}/v1/admin/models", headers=wrong_admin).status_code == 401
    missing = requests.get(f"{url}/v1/recognitions/{player}", headers=headers)
    assert missing.status_code == 404
    stack.stop()  # flush and close every log

    logs = {name: (stack.logs / f"{name}.log").read_text() for name in ("api", "worker")}
    everything = "\n".join(logs.values())
    secret = urlsplit(settings.object_store_url).password
    strokes = json.dumps(drawing[0][0][:6])[1:-1]  # "x1, x2, ..." as JSON writes them
    needles = (CLIENT_KEY, ADMIN_TOKEN, secret, player_secret, player, strokes)
    for needle in (*needles, strokes.replace(" ", "")):
        assert needle and needle not in everything, f"{needle!r} is in the logs"
    # The access log names each request by its route, never its path.
    access = [line for line in _lines(logs["api"]) if line.get("logger") == "doodle.access"]
    assert any("/v1/players/<player_id>/export" in line["message"] for line in access), access
    # Each request id is named by the worker's line about the batch its doodle was in.
    named = {rid for line in _lines(logs["worker"]) for rid in line.get("request_ids", [])}
    assert {"trace-0", "trace-1", "trace-2"} <= named, logs["worker"]
