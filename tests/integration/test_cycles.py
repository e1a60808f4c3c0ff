"""Flywheel cycles (services.cycles) against real Postgres: requested, taken by one flow,
never two at once, and a killed flow's cycle recovered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.settings import PROJECT_ROOT
from db.labels import add_label
from db.models import AuditLog, LabelSource, TrainingRun
from services import cycles
from tests.integration.test_labels import game_doodle


def _runs(sessions) -> list[tuple[int, str]]:
    with sessions() as s:
        return [(r.id, r.status) for r in s.scalars(select(TrainingRun).order_by(TrainingRun.id))]


def test_a_request_is_kept_and_a_second_one_gets_the_first_back(db_session_factory):
    first = cycles.request_cycle(db_session_factory, actor="admin:abc", reason="new words")
    assert (first.status, first.requested_by, first.reason) == (
        "requested",
        "admin:abc",
        "new words",
    )
    assert first.existing is False and first.started_at is None and first.promoted is None

    second = cycles.request_cycle(db_session_factory, actor="trigger", reason="230 new labels")

    assert second.existing is True and second.id == first.id
    assert second.requested_by == "admin:abc"
    assert _runs(db_session_factory) == [(first.id, "requested")]
    with db_session_factory() as s:
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "cycle.request")).all()
        assert [(a.actor, a.subject) for a in audits] == [("admin:abc", f"training_run:{first.id}")]
    assert cycles.get_cycle(db_session_factory, first.id) == first
    assert cycles.get_cycle(db_session_factory, first.id + 1) is None


def test_many_requests_at_once_make_one_cycle(db_session_factory):
    results: list[cycles.CycleRun] = []
    barrier = threading.Barrier(8)

    def ask(i: int) -> None:
        barrier.wait()
        results.append(cycles.request_cycle(db_session_factory, actor=f"admin:{i}", reason="go"))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len({r.id for r in results}) == 1
    assert sorted(r.existing for r in results) == [False] + [True] * 7
    assert len(_runs(db_session_factory)) == 1


def test_the_database_refuses_a_second_active_cycle(db_session_factory):
    """Even code that skips the service cannot have two cycles requested or running."""
    with db_session_factory.begin() as s:
        s.add(TrainingRun(status="running", params={}, report={}))
    with pytest.raises(IntegrityError), db_session_factory.begin() as s:
        s.add(TrainingRun(status="requested", params={}, report={}))


def test_a_flow_takes_the_requested_cycle_and_a_second_flow_is_busy(db_session_factory):
    asked = cycles.request_cycle(db_session_factory, actor="admin:abc", reason="new words")

    with cycles.hold_cycle(
        db_session_factory, actor="cli", reason="", flow_run_id="f1", params={"epochs": 1}
    ) as held:
        assert isinstance(held, cycles.CycleRun)
        assert (held.id, held.status, held.requested_by) == (asked.id, "running", "admin:abc")
        assert held.started_at is not None and held.flow_run_id == "f1"
        # A live flow's cycle is not abandoned, and nobody starts another meanwhile.
        assert cycles.recover_abandoned(db_session_factory) == []
        with cycles.hold_cycle(db_session_factory, actor="schedule", reason="nightly") as other:
            assert isinstance(other, cycles.Busy)
            assert other.run_id == asked.id and "another cycle is running" in other.reason
        again = cycles.request_cycle(db_session_factory, actor="trigger", reason="labels")
        assert (again.id, again.existing, again.status) == (asked.id, True, "running")
        cycles.set_stage(db_session_factory, held.id, "finetune")
        assert cycles.get_cycle(db_session_factory, held.id).stage == "finetune"  # type: ignore[union-attr]
        report = {"promoted": True, "candidate_version": None, "reasons": ["better"]}
        cycles.finish_cycle(db_session_factory, held.id, "promoted", report, None)

    done = cycles.get_cycle(db_session_factory, asked.id)
    assert done is not None
    assert (done.status, done.promoted, done.stage) == ("promoted", True, None)
    assert done.finished_at is not None and "better" in done.summary
    # Without a request, a flow starts a cycle of its own.
    with cycles.hold_cycle(db_session_factory, actor="schedule", reason="nightly") as own:
        assert isinstance(own, cycles.CycleRun) and own.id != asked.id
        assert (own.requested_by, own.status) == ("schedule", "running")
        cycles.finish_cycle(db_session_factory, own.id, "skipped", {"promoted": False}, None)
    assert [c.id for c in cycles.recent_cycles(db_session_factory)] == [own.id, asked.id]


def test_a_block_that_raises_fails_its_cycle(db_session_factory):
    try:
        with cycles.hold_cycle(db_session_factory, actor="cli", reason="") as held:
            assert isinstance(held, cycles.CycleRun)
            raise ValueError("storage down")
    except ValueError:
        pass
    run = cycles.get_cycle(db_session_factory, held.id)
    assert run is not None
    assert (run.status, run.promoted) == ("failed", False)
    assert "storage down" in run.summary


def test_a_killed_flow_does_not_block_the_next_cycle(db_session_factory, database_url):
    """A process holding a cycle is killed (SIGKILL: no cleanup); its lock goes with its
    connection, and the next request marks the cycle abandoned and asks for a new one."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from db.session import make_engine, make_session_factory
        from services import cycles
        sessions = make_session_factory(make_engine({database_url!r}))
        with cycles.hold_cycle(sessions, actor="cli", reason="doomed") as held:
            print(held.id, flush=True)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        doomed = int(proc.stdout.readline())
        # Alive: its cycle stands.
        assert cycles.request_cycle(db_session_factory, actor="admin:a", reason="x").id == doomed
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed connection almost at once
            fresh = cycles.request_cycle(db_session_factory, actor="admin:a", reason="after")
            if not fresh.existing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert fresh.existing is False and fresh.id != doomed
    abandoned = cycles.get_cycle(db_session_factory, doomed)
    assert abandoned is not None
    assert (abandoned.status, abandoned.promoted) == ("abandoned", False)
    assert "stopped before the end" in abandoned.summary


def test_new_labels_count_people_and_players_since_the_last_cycle(db_session_factory):
    with db_session_factory.begin() as s:
        labelled = [game_doodle(s, word="cup") for _ in range(3)]
        for rid in labelled:
            add_label(s, rid, "cup", LabelSource.reviewer, "reviewer:r1")
        for _ in range(2):  # players' prompts the next relabel will decide about
            game_doodle(s, word="ant")
        game_doodle(s, word="ant", player="p2", train=False)  # may not train: never counts
        unsure = game_doodle(s, word="cup", player="p2", train=False)
        add_label(s, unsure, "cup", LabelSource.reviewer, "reviewer:r1")
    assert cycles.new_labels_since_last_cycle(db_session_factory) == 5

    with cycles.hold_cycle(db_session_factory, actor="cli", reason="") as held:
        assert isinstance(held, cycles.CycleRun)
        cycles.finish_cycle(db_session_factory, held.id, "skipped", {}, None)
    # A cycle started: what came before it is not new any more.
    assert cycles.new_labels_since_last_cycle(db_session_factory) == 0

    with db_session_factory.begin() as s:
        rid = game_doodle(s, word="cup")
        add_label(s, rid, "cup", LabelSource.reviewer, "reviewer:r1")
        other = game_doodle(s, word="cup")
        add_label(s, other, "cup", LabelSource.prompt, "flow:relabel (model v1)")  # a flow's
    assert cycles.new_labels_since_last_cycle(db_session_factory) == 1
