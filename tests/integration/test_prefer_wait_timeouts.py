"""`Prefer: wait` past redis-py's default socket timeout (5 s): the wait ends by the BLPOP's
own timeout, never by the socket's, so a long wait answers the result or a quiet 202."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from api import create_app
from api.resources import EXTENSION
from db.models import Recognition
from tests.fixtures.app import CLIENT_KEY, recognize

# Beyond redis-py's default socket timeout, within the API's cap (max_wait_seconds, 10 s).
LONG_WAIT = 9.0
# The stand-in worker answers this long after the doodle is recorded: past 5 s.
WORKER_DELAY = 5.5


@pytest.fixture
def apple(sample_drawings) -> list:
    return sample_drawings["apple"][0]["drawing"]


def _post_and_wait(client, drawing: list, prefer: str):
    started = time.monotonic()
    response = client.post(
        "/v1/recognitions",
        data=json.dumps({"drawing": drawing}),
        headers={"X-API-Key": CLIENT_KEY, "Prefer": prefer},
        content_type="application/json",
    )
    return response, time.monotonic() - started


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_redis_client_outwaits_the_longest_wait(app, settings):
    """The socket gives a blocking pop its whole cap and a margin; connecting stays quick."""
    kwargs = app.extensions[EXTENSION].redis.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] >= settings.max_wait_seconds + 1
    assert kwargs["socket_connect_timeout"] <= 2


def test_a_result_after_more_than_five_seconds_is_answered(
    client, worker_runtime, db_session_factory, apple, seed_version, caplog
):
    """A stand-in worker answers 5.5 s after the doodle arrived: the 9 s wait gets it."""
    caplog.set_level(logging.WARNING)
    worker_runtime.models.current()  # loaded before: the delay below is the whole lateness

    def work() -> None:
        for _ in range(500):
            with db_session_factory() as s:
                rid = s.scalar(select(Recognition.id).limit(1))
            if rid is not None:
                threading.Event().wait(WORKER_DELAY)  # the slow worker this test is about
                recognize(worker_runtime, rid)
                return
            threading.Event().wait(0.02)

    thread = threading.Thread(target=work)
    thread.start()
    response, elapsed = _post_and_wait(client, apple, f"wait={LONG_WAIT:g}")
    thread.join()
    assert response.status_code == 200, (elapsed, response.get_data(as_text=True))
    assert response.get_json()["prediction"]["label"] == "apple"
    assert elapsed >= WORKER_DELAY
    assert _errors(caplog) == []


def test_no_answer_within_a_long_wait_is_a_quiet_202(client, apple, seed_version, caplog):
    """No worker: the whole 9 s are waited (no socket error cuts them short), then 202,
    and nothing is logged as an error."""
    caplog.set_level(logging.WARNING)
    response, elapsed = _post_and_wait(client, apple, f"wait={LONG_WAIT:g}")
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["status"] == "queued"
    assert elapsed >= LONG_WAIT - 0.1
    assert _errors(caplog) == []


def test_a_wait_above_the_cap_answers_after_the_cap(settings, apple, seed_version, caplog):
    """wait=600 is held to the cap (6 s here, past the old 5 s socket timeout), then 202."""
    caplog.set_level(logging.WARNING)
    capped = replace(settings, max_wait_seconds=6.0)
    app = create_app(capped)
    try:
        response, elapsed = _post_and_wait(app.test_client(), apple, "wait=600")
    finally:
        app.extensions[EXTENSION].close()
    assert response.status_code == 202, response.get_data(as_text=True)
    assert elapsed >= capped.max_wait_seconds - 0.1
    assert _errors(caplog) == []
