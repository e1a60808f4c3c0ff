"""flows.trigger.flywheel_trigger against real Postgres and the Prefect test harness:
cycles start when data arrives or an admin asks, never two at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from core.settings import Settings
from db.models import TrainingRun
from services import cycles
from tests.integration.test_labels import game_doodle

THRESHOLD = 4
FINISHED = {"promoted", "rejected", "skipped", "failed"}


@pytest.fixture
def trigger_context(prefect_harness: None, settings: Settings, seed_version: int) -> Iterator[Any]:
    from flows.context import FlowContext, use_context

    context = FlowContext(replace(settings, flywheel_min_new_labels=THRESHOLD))
    use_context(context)
    try:
        yield context
    finally:
        use_context(None)
        context.close()


def _players_draw(sessions, n: int) -> None:
    """Players' doodles with a prompt, waiting for relabelling: new data for a cycle."""
    with sessions.begin() as s:
        for _ in range(n):
            game_doodle(s, word="cup")


def _runs(sessions) -> list[TrainingRun]:
    with sessions() as s:
        return list(s.scalars(select(TrainingRun).order_by(TrainingRun.id)))


def test_below_the_threshold_nothing_starts(trigger_context, db_session_factory):
    from flows.trigger import flywheel_trigger

    _players_draw(db_session_factory, THRESHOLD - 1)

    result = flywheel_trigger()

    assert result["started"] is False
    assert result["new_labels"] == THRESHOLD - 1
    assert result["reason"] == f"{THRESHOLD - 1} new labels since the last cycle, fewer than 4"
    assert _runs(db_session_factory) == []


def test_at_the_threshold_one_cycle_runs_and_the_next_look_waits(
    trigger_context, db_session_factory
):
    from flows.trigger import flywheel_trigger

    _players_draw(db_session_factory, THRESHOLD)

    result = flywheel_trigger()

    assert result["started"] is True and result["new_labels"] == THRESHOLD
    [run] = _runs(db_session_factory)
    assert result["run"] == run.id
    assert run.status in FINISHED and run.finished_at is not None
    assert (run.requested_by, run.reason) == (
        "trigger",
        f"{THRESHOLD} new labels since the last cycle",
    )
    assert run.started_at >= run.requested_at
    # The cycle's relabelling saw those doodles: nothing is new any more.
    again = flywheel_trigger()
    assert again["started"] is False and again["new_labels"] == 0
    assert len(_runs(db_session_factory)) == 1


def test_two_triggers_at_once_start_one_cycle(trigger_context, db_session_factory):
    from flows.trigger import flywheel_trigger

    _players_draw(db_session_factory, THRESHOLD)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def look() -> None:
        try:
            barrier.wait()
            results.append(flywheel_trigger())
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=look) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)

    assert errors == []
    assert sorted(r["started"] for r in results) == [False, True]
    [run] = _runs(db_session_factory)
    assert run.status in FINISHED
    idle = next(r for r in results if not r["started"])
    # Whichever way the race went, the other look says why it started nothing.
    assert any(
        why in idle["reason"] for why in ("is running", "another cycle is running", "fewer than")
    ), idle


def test_a_requested_cycle_runs_without_new_data_and_ends_with_its_status(
    trigger_context, db_session_factory
):
    from flows.trigger import flywheel_trigger

    asked = cycles.request_cycle(db_session_factory, actor="admin:abc", reason="try it")

    result = flywheel_trigger()

    assert result["started"] is True and result["run"] == asked.id
    assert result["new_labels"] == 0
    done = cycles.get_cycle(db_session_factory, asked.id)
    assert done is not None
    # No production data at all: the cycle ran and had nothing to learn.
    assert (done.status, done.requested_by, done.promoted) == ("skipped", "admin:abc", False)
    assert done.flow_run_id is not None and done.stage is None
    assert "no training data" in done.summary
    assert [c.id for c in cycles.recent_cycles(db_session_factory)] == [asked.id]


def _cli(*args: str) -> dict[str, Any]:
    from click.testing import CliRunner

    from cli.main import cli

    result = CliRunner().invoke(cli, ["flows", "run", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_doodle_flows_run_trigger_looks_once(
    flows_env, seed_version, db_session_factory, monkeypatch
):
    monkeypatch.setenv("DOODLE_FLYWHEEL_MIN_NEW_LABELS", "1000")
    _players_draw(db_session_factory, 2)

    headline = _cli("trigger")

    assert headline["started"] is False and headline["new_labels"] == 2
    assert headline["reason"] == "2 new labels since the last cycle, fewer than 1000"
    assert _runs(db_session_factory) == []


def test_a_flywheel_run_while_a_cycle_runs_starts_nothing(
    flows_env, seed_version, db_session_factory
):
    with cycles.hold_cycle(db_session_factory, actor="trigger", reason="230 new labels") as held:
        assert isinstance(held, cycles.CycleRun)

        headline = _cli("flywheel")

        assert headline["started"] is False and headline["run"] == held.id
        assert headline["busy"] == f"another cycle is running (cycle {held.id}, asked by trigger)"
        assert [(r.id, r.status) for r in _runs(db_session_factory)] == [(held.id, "running")]
        cycles.finish_cycle(db_session_factory, held.id, "skipped", {"promoted": False}, None)
