"""`/readyz` on the real processes: gunicorn and `doodle worker`s. Not ready until a live
worker consumes recognitions and another (or the same) live guesses; not ready again once
a worker is killed without a goodbye, as soon as its beats expire. `/healthz` stays up."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from tests.e2e.conftest import STARTUP_SECONDS, Stack
from tests.fixtures.app import CLIENT_KEY

BEATS = {"DOODLE_WORKER_HEARTBEAT_SECONDS": "0.5"}  # a killed consumer expires within 3 s
WAIT_SECONDS = 20.0  # a bound for a busy machine, not a figure under test


def _get(stack: Stack, path: str) -> requests.Response | None:
    try:
        return requests.get(f"{stack.base_url}{path}", timeout=5)
    except requests.ConnectionError:
        return None  # not listening yet


def _eventually(check: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not in {seconds}s: {what}"
        time.sleep(0.1)


def _lacking(stack: Stack) -> set[str] | None:
    """The batch queues /readyz says lack a worker (None: it did not answer)."""
    response = _get(stack, "/readyz")
    if response is None:
        return None
    if response.status_code == 200:
        return set()
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    queues = body["checks"]["workers"]["queues"]
    named = {q for q in queues if f"no live worker consumes the {q} queue" in body["reason"]}
    assert named == {q for q, n in queues.items() if n == 0}, body
    return named


def test_ready_once_each_queue_has_a_live_worker_and_not_after_one_is_killed(
    stack: Stack, sample_drawings
):
    # The API alone (not start_api, which waits for readiness).
    stack.start("api", "api", "--host", "127.0.0.1", "--workers", "1", "--threads", "4")
    _eventually(lambda: _lacking(stack) is not None, "the API answers", STARTUP_SECONDS)
    assert _lacking(stack) == {"recognitions", "guesses"}
    healthz = _get(stack, "/healthz")
    assert healthz is not None and healthz.status_code == 200  # alive, just not ready

    stack.start("worker", "worker", "--queues", "recognitions,maintenance", **BEATS)
    _eventually(lambda: _lacking(stack) == {"guesses"}, "recognitions taken", STARTUP_SECONDS)

    stack.start("guesser", "worker", "--queues", "guesses", "--pool", "solo", **BEATS)
    _eventually(lambda: _lacking(stack) == set(), "ready", STARTUP_SECONDS)

    # Ready means a request is answered now, not left for workers to come.
    drawing = sample_drawings["star"][0]["drawing"]
    headers = {"X-API-Key": CLIENT_KEY, "Prefer": "wait=10"}
    url = stack.base_url
    # The guess first: a cold first recognition's queue wait would shed guesses for a while.
    guess = requests.post(
        f"{url}/v1/guesses", json={"drawing": drawing}, headers=headers, timeout=30
    )
    assert guess.status_code == 200, (guess.text, stack.tail("guesser"))
    recognition = requests.post(
        f"{url}/v1/recognitions", json={"drawing": drawing}, headers=headers, timeout=30
    )
    assert recognition.status_code == 200, (recognition.text, stack.tail("worker"))
    assert recognition.json()["status"] == "done"

    stack.kill("guesser")  # SIGKILL: no goodbye; its consumer's key expires
    _eventually(lambda: _lacking(stack) == {"guesses"}, "the killed guesser stops counting")
    healthz = _get(stack, "/healthz")
    assert healthz is not None and healthz.status_code == 200
