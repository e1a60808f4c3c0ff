"""Bounded waits on Postgres (db.session.DatabaseTimeouts): each role keeps its own
statement and lock timeouts, a lock held elsewhere is a quick 503, and a frozen server is
given up on by the client."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from api.resources import Resources
from db.models import Recognition
from devtools.postgres_freeze import private_postgres
from services.connections import Connections
from tests.fixtures.app import CLIENT_KEY, assert_error
from workers.runtime import WorkerRuntime

# Generous against the API's 1 s lock timeout on a busy machine; a hang would be endless.
ANSWER_BOUND = 3.0


@pytest.mark.parametrize(
    ("holder", "statement", "lock"),
    [(Resources, "1500ms", "1s"), (WorkerRuntime, "1min", "10s"), (Connections, "1h", "1min")],
)
def test_each_role_keeps_its_own_timeouts(settings, holder, statement, lock):
    """The API's are short; workers' and flows' long statements are not cut by them."""
    connections = holder(settings)
    try:
        for engine in (connections.engine, connections.autocommit):
            with engine.connect() as conn:
                assert conn.execute(text("SHOW statement_timeout")).scalar() == statement
                assert conn.execute(text("SHOW lock_timeout")).scalar() == lock
    finally:
        connections.close()


def test_the_workers_own_server_options_are_kept(settings):
    runtime = WorkerRuntime(settings)
    try:
        with runtime.autocommit.connect() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1min"
    finally:
        runtime.close()


def test_a_locked_table_is_a_quick_503_with_retry_after(
    client, db_engine, db_session_factory, sample_drawings
):
    """A migration or a long admin transaction holds the table: the API's INSERT gives up
    after its lock timeout and answers 503, instead of holding the client and a thread."""
    body = json.dumps({"drawing": sample_drawings["apple"][0]["drawing"]})
    with db_engine.connect() as holder:
        holder.execute(text("LOCK TABLE recognitions IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        response = client.post(
            "/v1/recognitions",
            data=body,
            headers={"X-API-Key": CLIENT_KEY},
            content_type="application/json",
        )
        elapsed = time.monotonic() - started
        read = client.get(f"/v1/recognitions/{uuid.uuid4()}", headers={"X-API-Key": CLIENT_KEY})
        holder.rollback()
    assert_error(response, 503, "unavailable")
    assert response.headers["Retry-After"]
    assert elapsed < ANSWER_BOUND
    assert_error(read, 503, "unavailable")
    with db_session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Recognition)) == 0


def test_a_frozen_server_is_given_up_on_and_found_again(settings):
    """A statement on a pooled connection and a new connection to a stopped server both end
    within their deadlines (an error the API answers 503); after the thaw all works."""
    with private_postgres() as pg:
        # No cooldown: each engine meets the frozen server itself.
        api = Resources(settings.with_services(database_url=pg.url, api_db_cooldown_seconds=0.0))
        try:
            with api.autocommit.connect() as conn:
                conn.execute(text("SELECT 1"))
            with pg.frozen():
                for engine in (api.autocommit, api.engine):  # a pooled connection; a new one
                    started = time.monotonic()
                    with pytest.raises(OperationalError), engine.connect() as conn:
                        conn.execute(text("SELECT 1"))
                    assert time.monotonic() - started < ANSWER_BOUND
            for engine in (api.autocommit, api.engine):
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT 1")).scalar() == 1
        finally:
            api.close()


def test_after_a_silence_the_api_refuses_at_once_for_its_cooldown(settings):
    api = Resources(settings.with_services(api_db_cooldown_seconds=60.0))
    try:
        with api.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        api.db_guard.trip()  # what a reply deadline or connect timeout that ran out does
        # Refused by the guard, not by the (running) server.
        with pytest.raises(OperationalError, match="did not answer a moment ago"):
            api.engine.connect()
    finally:
        api.close()
