"""A frozen Postgres (every process SIGSTOPped: connections accepted, nothing answered) is
an outage like any other: the API answers 503 + Retry-After quickly instead of hanging,
and once Postgres runs again everything works and nothing accepted is lost.

The stack runs on a private PostgreSQL (devtools.postgres_freeze), never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, text

from db.models import Recognition, RecognitionStatus
from db.registry import Alias
from db.session import make_engine, make_session_factory
from devtools.postgres_freeze import PrivatePostgres, private_postgres
from ml.network import seed_classes, seed_weights_path
from tests.e2e.conftest import Stack
from tests.fixtures.app import CLIENT_KEY, import_version

HEADERS = {"X-API-Key": CLIENT_KEY}
# Generous against the 2 s target (a busy 2-core machine), far below the 20 s hangs of old.
ANSWER_BOUND = 3.0
# Past the API's cooldown (1 s): the second round meets the frozen server again, with
# pooled connections now idle (pinged on checkout) or gone (connecting).
BETWEEN_ROUNDS = 1.5
FINISH_SECONDS = 60
# The sweeper sends a recognition whose publication was lost this soon (default 60 s).
FAST_SWEEPER = {"DOODLE_SWEEPER_STALE_SECONDS": "2", "DOODLE_SWEEP_SECONDS": "1"}


@pytest.fixture
def private_db() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


@pytest.fixture
def frozen_stack(settings, private_db: PrivatePostgres, tmp_path: Path) -> Iterator[Stack]:
    own = settings.with_services(database_url=private_db.url)
    import_version(
        own,
        seed_weights_path().read_bytes(),
        seed_classes(),
        alias=Alias.PRODUCTION,
        source="seed",
    )
    own.home.mkdir(parents=True, exist_ok=True)
    stack = Stack(own, tmp_path)
    try:
        yield stack
    finally:
        stack.stop()


def _timed(method: str, url: str, **kw: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=30, **kw)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def _post(
    stack: Stack, drawing: list, prefer: str | None = None
) -> tuple[requests.Response, float]:
    headers = {**HEADERS, **({"Prefer": prefer} if prefer else {})}
    return _timed(
        "POST", f"{stack.base_url}/v1/recognitions", json={"drawing": drawing}, headers=headers
    )


def _wait_ready(stack: Stack, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if requests.get(f"{stack.base_url}/readyz", timeout=10).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"not ready {seconds}s after the thaw:\n{stack.tail('api')}")


def test_a_frozen_postgres_is_a_quick_503_and_nothing_accepted_is_lost(
    frozen_stack: Stack, private_db: PrivatePostgres, sample_drawings
):
    stack = frozen_stack
    stack.start_worker("worker", **FAST_SWEEPER)
    stack.start("beat", "beat", **FAST_SWEEPER)
    stack.wait_worker_ready("worker")
    stack.start_api()
    apple = sample_drawings["apple"][0]["drawing"]
    accepted: list[str] = []

    before, _ = _post(stack, apple, "wait=5")
    assert before.status_code == 200, before.text
    accepted.append(before.json()["id"])
    known = f"{stack.base_url}/v1/recognitions/{accepted[0]}"

    answers: list[tuple[str, int, str | None, float]] = []
    with private_db.frozen():
        for _ in range(2):
            for name, (response, elapsed) in (
                ("POST /v1/recognitions", _post(stack, apple)),
                ("GET /v1/recognitions/<id>", _timed("GET", known, headers=HEADERS)),
                ("GET /readyz", _timed("GET", f"{stack.base_url}/readyz")),
            ):
                if response.status_code in (200, 202):
                    accepted.append(response.json()["id"])
                answers.append(
                    (name, response.status_code, response.headers.get("Retry-After"), elapsed)
                )
            time.sleep(BETWEEN_ROUNDS)

    for name, status, retry_after, elapsed in answers:
        assert status == 503 and retry_after, (name, status, retry_after, answers)
        assert elapsed < ANSWER_BOUND, (name, elapsed, answers)

    _wait_ready(stack, 30)
    after, _ = _post(stack, apple, "wait=5")
    assert after.status_code == 200, after.text
    accepted.append(after.json()["id"])
    again = requests.get(known, headers=HEADERS, timeout=10)
    assert again.status_code == 200 and again.json()["status"] == "done", again.text

    # Every row, accepted or recorded by a request that got its 503 while the INSERT waited
    # in the frozen server, ends done.
    engine = make_engine(private_db.url)
    try:
        sessions = make_session_factory(engine)
        deadline = time.monotonic() + FINISH_SECONDS
        while True:
            with sessions() as s:
                rows = dict(
                    s.execute(
                        select(Recognition.status, func.count()).group_by(Recognition.status)
                    ).all()
                )
                ids = {str(i) for i in s.scalars(select(Recognition.id))}
            if set(rows) == {RecognitionStatus.done}:
                break
            assert time.monotonic() < deadline, (rows, stack.tail("worker", 60))
            time.sleep(0.5)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    assert set(accepted) <= ids, set(accepted) - ids
    print(f"answers while frozen: {answers}; rows {sum(rows.values())}, accepted {len(accepted)}")
