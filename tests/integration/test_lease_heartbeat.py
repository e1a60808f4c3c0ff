"""The lease heartbeat (workers.leases) against real Postgres and Redis: a batch held
longer than the lease is not resent while its worker renews it; once the renewals stop (the
worker died), it is resent a lease after the last one (issue 18: a slow batch was resent as
if its worker had died)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import cast

import pytest

from db import processing
from db import recognitions as rec
from db.models import InputFormat, Recognition, RecognitionStatus
from ml.predict import Predictor
from workers.leases import LeaseKeeper
from workers.model_cache import LoadedModel
from workers.recognize import BatchReport, recognize_batch, sweep
from workers.runtime import WorkerRuntime

# Short enough for a test, long enough that a busy 2-core machine renews in time: the
# keeper renews a third of a lease after the last renewal and looks every sixth.
LEASE = 1.5


@pytest.fixture
def runtime(settings) -> Iterator[WorkerRuntime]:
    runtime = WorkerRuntime(dataclasses.replace(settings, lease_seconds=LEASE))
    yield runtime
    runtime.close()


def _queue(db_session_factory, drawing) -> uuid.UUID:
    with db_session_factory.begin() as s:
        new = rec.NewRecognition(input_format=InputFormat.simplified, payload=drawing)
        return rec.insert_recognition(s, new).id


def _row(db_session_factory, rid: uuid.UUID) -> Recognition:
    with db_session_factory() as s:
        row = s.get(Recognition, rid)
        assert row is not None
        return row


def _started_at(db_session_factory, rid: uuid.UUID) -> dt.datetime:
    """When the doodle's lease last began (its claim or the last renewal)."""
    started_at = _row(db_session_factory, rid).started_at
    assert started_at is not None
    return started_at


def _sweep_while(runtime: WorkerRuntime, busy, at_least: float) -> list[uuid.UUID]:
    """Sweep again and again while `busy()` and for at least `at_least` seconds: what the
    sweeper resent."""
    sent: list[uuid.UUID] = []
    until = time.monotonic() + at_least
    while busy() or time.monotonic() < until:
        sweep(runtime, sent.append)
        time.sleep(LEASE / 10)
    return sent


def test_a_claim_renewed_past_its_lease_is_not_swept_and_is_once_renewals_stop(
    runtime, db_session_factory, sample_drawings
):
    rid = _queue(db_session_factory, sample_drawings["tree"][0]["drawing"])
    with runtime.autocommit.connect() as conn:
        claimed = processing.claim_batch(conn, [rid])
    assert [c.id for c in claimed] == [rid]
    with runtime.leases.holding(claimed):
        # Held for three leases while the worker lives: never resent, never taken over.
        assert _sweep_while(runtime, lambda: False, at_least=3 * LEASE) == []
        with runtime.engine.begin() as conn:
            assert processing.claim_abandoned(conn, rid, LEASE) is None
        renewed = _started_at(db_session_factory, rid)
        assert (renewed - claimed[0].started_at).total_seconds() >= 2 * LEASE
        # The worker dies: its renewals stop (its process, thread and all, is gone).
        runtime.leases.stop()
        sent: list[uuid.UUID] = []
        deadline = time.monotonic() + 10 * LEASE
        while not sent and time.monotonic() < deadline:
            sweep(runtime, sent.append)
            time.sleep(LEASE / 10)
        assert sent == [rid]
        # Resent a lease after the last renewal, which was the last: the row is as it was.
        row = _row(db_session_factory, rid)
        assert row.status is RecognitionStatus.running and row.started_at == renewed
        assert row.enqueued_at is not None
        assert (row.enqueued_at - renewed).total_seconds() >= LEASE
        # The resent doodle is claimed again by the next worker, counting the attempt.
        with runtime.engine.begin() as conn:
            again = processing.claim_abandoned(conn, rid, LEASE)
        assert again is not None and again.attempts == 2


def test_a_claim_taken_over_after_a_lapse_is_no_longer_renewed(
    runtime, db_session_factory, sample_drawings
):
    rid = _queue(db_session_factory, sample_drawings["tree"][1]["drawing"])
    with runtime.autocommit.connect() as conn:
        (claimed,) = processing.claim_batch(conn, [rid])
        # Another worker's claim (after a lapse) marks the row with its own time.
        conn.exec_driver_sql(
            "UPDATE recognitions SET started_at = now() - interval '1 minute' WHERE id = %s",
            (rid,),
        )
        theirs = _started_at(db_session_factory, rid)
        assert processing.extend_lease(conn, [rid], claimed.started_at) == (None, 0)
        # Its owner's renewal does renew it.
        new_time, count = processing.extend_lease(conn, [rid], theirs)
        assert count == 1 and new_time is not None and new_time > theirs


class _SlowPredictor:
    """The real predictor, after holding the batch for `seconds` (a costly batch)."""

    def __init__(self, predictor, seconds: float, started: threading.Event) -> None:
        self._predictor, self._seconds, self._started = predictor, seconds, started

    def predict(self, bitmaps):
        self._started.set()
        time.sleep(self._seconds)
        return self._predictor.predict(bitmaps)


def test_a_batch_slower_than_the_lease_is_recognised_once_and_never_resent(
    runtime, db_session_factory, sample_drawings, seed_version, monkeypatch
):
    ids = [_queue(db_session_factory, sample_drawings["star"][i]["drawing"]) for i in range(3)]
    model = runtime.models.current()
    started = threading.Event()
    predictor = cast(Predictor, _SlowPredictor(model.predictor, 3 * LEASE, started))
    slow = LoadedModel(model.version_id, model.classes, predictor)
    monkeypatch.setattr(runtime.models, "current", lambda: slow)
    reports: list[BatchReport] = []
    worker = threading.Thread(target=lambda: reports.append(recognize_batch(runtime, ids)))
    worker.start()
    try:
        assert started.wait(30)
        # The sweeper runs all along, as it does every 2 s beside the workers.
        sent = _sweep_while(runtime, worker.is_alive, at_least=0)
    finally:
        worker.join(60)
    assert sent == []
    (report,) = reports
    assert (report.done, report.failed, report.skipped) == (3, 0, 0)
    for rid in ids:
        row = _row(db_session_factory, rid)
        assert row.status is RecognitionStatus.done and row.label == "star"
        assert row.attempts == 1


def test_a_batch_that_finishes_within_a_third_of_a_lease_costs_no_statement(
    runtime, db_session_factory, sample_drawings
):
    # A keeper without its thread (stopped before use): renewals only when the test asks.
    keeper = LeaseKeeper(runtime.autocommit, LEASE, max_hold_seconds=60)
    keeper.stop()
    rid = _queue(db_session_factory, sample_drawings["tree"][2]["drawing"])
    with runtime.autocommit.connect() as conn:
        claimed = processing.claim_batch(conn, [rid])
    with keeper.holding(claimed):
        assert keeper.renew_due() == 0  # not due yet: no statement
        time.sleep(keeper.renew_after)
        assert keeper.renew_due() == 1
        assert _started_at(db_session_factory, rid) > claimed[0].started_at
    # Finished: nothing of it is renewed any more.
    time.sleep(keeper.renew_after)
    assert keeper.renew_due() == 0


def test_a_batch_held_past_the_task_time_limit_is_left_to_lapse(
    runtime, db_session_factory, sample_drawings
):
    # Stuck (held longer than max_hold_seconds): no more renewals, so the sweeper resends
    # it and a doodle that keeps hanging workers is failed after max_attempts.
    keeper = LeaseKeeper(runtime.autocommit, LEASE, max_hold_seconds=LEASE / 3)
    keeper.stop()
    rid = _queue(db_session_factory, sample_drawings["tree"][3]["drawing"])
    with runtime.autocommit.connect() as conn:
        claimed = processing.claim_batch(conn, [rid])
    with keeper.holding(claimed):
        time.sleep(keeper.renew_after)
        assert keeper.renew_due() == 0
        assert _started_at(db_session_factory, rid) == claimed[0].started_at
