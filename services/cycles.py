"""Flywheel cycles: asked for, taken by one flow at a time, and never two at once.

A cycle is a `training_runs` row. It is *requested* (by an admin, the data trigger, the
schedule: `requested_by`, with a `reason`), then *running* once a flywheel flow takes it,
then finished (promoted, rejected, skipped, failed) or *abandoned* (its flow died).

Never two at once, enforced twice:
- the database: a partial unique index lets one row at most be requested or running,
  so a second request gets the first one back (`request_cycle`, `CycleRun.existing`);
- the running flow holds a Postgres advisory lock (`hold_cycle`) on its own connection
  for as long as it runs. A flow that cannot take it does not start. A process that
  dies loses its connection and the lock with it: whoever next finds a running row and
  a free lock marks the row abandoned (`recover_abandoned`), so a killed flow never
  blocks the cycles after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.labels import may_train, trainable_game_doodle, with_consent_joins
from db.models import (
    AuditLog,
    Label,
    Recognition,
    RecognitionStatus,
    Review,
    TrainingRun,
)

REQUESTED = "requested"
RUNNING = "running"
ABANDONED = "abandoned"
ACTIVE = (REQUESTED, RUNNING)
# The advisory lock the running flywheel holds (any constant unique to this use).
CYCLE_LOCK_KEY = 0x0D00D1E_C1C1E
# Labels written by the flows themselves (relabel) do not count as new data.
FLOW_ACTOR_PREFIX = "flow:"


@dataclass(frozen=True)
class CycleRun:
    id: int
    status: str
    requested_by: str
    reason: str
    requested_at: dt.datetime
    started_at: dt.datetime | None  # None while requested
    finished_at: dt.datetime | None
    stage: str | None  # the running cycle's step: relabel, finetune, evaluate, ...
    candidate_version: int | None
    promoted: bool | None  # None until it finished
    summary: str  # one line from the report
    flow_run_id: str | None
    existing: bool = False  # request_cycle found this one requested or running already

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def as_dict(self) -> dict[str, Any]:
        def stamp(at: dt.datetime | None) -> str | None:
            return None if at is None else at.isoformat()

        return {
            "id": self.id,
            "status": self.status,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "requested_at": stamp(self.requested_at),
            "started_at": stamp(self.started_at),
            "finished_at": stamp(self.finished_at),
            "stage": self.stage,
            "candidate_version": self.candidate_version,
            "promoted": self.promoted,
            "summary": self.summary,
            "flow_run_id": self.flow_run_id,
        }


def summarize(status: str, report: dict[str, Any]) -> str:
    """One line saying how the cycle went, from its report."""
    if status == REQUESTED:
        return "waiting for the flywheel to take it"
    if status == RUNNING:
        return "running"
    if "error" in report:
        return f"{status}: {report['error']}"[:300]
    parts = [status]
    candidate = report.get("candidate_version")
    if candidate is not None:
        parts.append(f"candidate v{candidate}")
    top1 = report.get("golden_top1")
    if isinstance(top1, dict) and {"candidate", "production"} <= set(top1):
        parts.append(f"golden top-1 {top1['production']} -> {top1['candidate']}")
    reasons = report.get("reasons")
    if isinstance(reasons, list) and reasons:
        parts.append("; ".join(str(r) for r in reasons[:3]))
    return ", ".join(parts)[:300]


def _cycle(run: TrainingRun, *, existing: bool = False) -> CycleRun:
    report = run.report or {}
    finished = run.status not in ACTIVE
    promoted = report.get("promoted") if finished else None
    return CycleRun(
        id=run.id,
        status=run.status,
        requested_by=run.requested_by,
        reason=run.reason,
        requested_at=run.requested_at,
        started_at=None if run.status == REQUESTED else run.started_at,
        finished_at=run.finished_at,
        stage=run.stage,
        candidate_version=run.candidate_version_id,
        promoted=bool(promoted) if promoted is not None else (False if finished else None),
        summary=summarize(run.status, report),
        flow_run_id=run.flow_run_id,
        existing=existing,
    )


def _engine(sessions: sessionmaker[Session]) -> Engine:
    bind = sessions.kw.get("bind")
    assert isinstance(bind, Engine), "the session factory is bound to an engine"
    return bind


def _try_lock(conn: Connection) -> bool:
    return bool(conn.execute(select(func.pg_try_advisory_lock(CYCLE_LOCK_KEY))).scalar_one())


def _unlock(conn: Connection) -> None:
    conn.execute(select(func.pg_advisory_unlock(CYCLE_LOCK_KEY)))


# -- reading ----------------------------------------------------------------------------


def get_cycle(sessions: sessionmaker[Session], run_id: int) -> CycleRun | None:
    with sessions() as s:
        run = s.get(TrainingRun, run_id)
        return None if run is None else _cycle(run)


def recent_cycles(sessions: sessionmaker[Session], limit: int = 20) -> list[CycleRun]:
    """The latest cycles, newest first (by id: the order they were asked for)."""
    with sessions() as s:
        runs = s.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit))
        return [_cycle(run) for run in runs]


def active_cycle(sessions: sessionmaker[Session]) -> CycleRun | None:
    """The cycle requested or running, if any (there is one at most)."""
    with sessions() as s:
        run = s.scalars(select(TrainingRun).where(TrainingRun.status.in_(ACTIVE))).first()
        return None if run is None else _cycle(run)


def new_labels_since_last_cycle(sessions: sessionmaker[Session]) -> int:
    """How much the next cycle has to learn that no cycle has seen:

    - labels written since the last cycle started by people (reviewers, imports; not by
      the flows themselves, whose relabelling is part of a cycle) on doodles that may be
      trained on, and
    - players' doodles with a prompt, finished since then, that may be trained on and
      that nobody decided about yet: the next cycle's relabelling turns them into labels.

    With no cycle yet, everything counts.
    """
    with sessions() as s:
        since = s.scalar(
            select(func.max(TrainingRun.started_at)).where(TrainingRun.status != REQUESTED)
        )
        labels = with_consent_joins(
            select(func.count(Label.id)).join(Recognition, Recognition.id == Label.recognition_id)
        ).where(~Label.actor.startswith(FLOW_ACTOR_PREFIX, autoescape=True), may_train())
        doodles = with_consent_joins(select(func.count(Recognition.id))).where(
            Recognition.status == RecognitionStatus.done,
            Recognition.word.is_not(None),
            Recognition.bitmap.is_not(None),
            trainable_game_doodle(),
            ~exists().where(Label.recognition_id == Recognition.id),
            ~exists().where(Review.recognition_id == Recognition.id),
        )
        if since is not None:
            labels = labels.where(Label.created_at > since)
            doodles = doodles.where(
                or_(Recognition.finished_at > since, Recognition.created_at > since)
            )
        return int(s.scalar(labels) or 0) + int(s.scalar(doodles) or 0)


# -- asking for one -----------------------------------------------------------------------


def request_cycle(sessions: sessionmaker[Session], *, actor: str, reason: str) -> CycleRun:
    """Ask for a cycle; the flywheel (the trigger flow, or the next run) takes it.

    If one is requested or running already, returns that one with `existing=True`
    instead: never two at once. Writes an audit row for a new request.
    """
    recover_abandoned(sessions)
    for _ in range(3):
        try:
            with sessions.begin() as s:
                run = TrainingRun(
                    status=REQUESTED, requested_by=actor, reason=reason, params={}, report={}
                )
                s.add(run)
                s.flush()
                s.refresh(run)
                s.add(
                    AuditLog(
                        actor=actor,
                        action="cycle.request",
                        subject=f"training_run:{run.id}",
                        details={"reason": reason},
                    )
                )
                return _cycle(run)
        except IntegrityError:
            # The one-active-cycle index: someone else asked first.
            active = active_cycle(sessions)
            if active is not None:
                return replace(active, existing=True)
    raise RuntimeError("could not request a cycle nor find the active one")


def _abandon_running(conn: Connection) -> list[int]:
    """Holding the cycle lock: every running row is a dead flow's; mark them abandoned."""
    stopped = {"promoted": False, "error": "the flow running this cycle stopped before the end"}
    return list(
        conn.execute(
            update(TrainingRun)
            .where(TrainingRun.status == RUNNING)
            .values(status=ABANDONED, finished_at=func.now(), stage=None, report=stopped)
            .returning(TrainingRun.id)
        ).scalars()
    )


def recover_abandoned(sessions: sessionmaker[Session]) -> list[int]:
    """Mark abandoned the running cycles whose flow died (nobody holds the cycle lock);
    returns their ids. Cheap when nothing runs: the lock is tried only then."""
    with sessions() as s:
        running = s.scalars(select(TrainingRun.id).where(TrainingRun.status == RUNNING)).all()
    if not running:
        return []
    with _engine(sessions).connect() as conn:
        if not _try_lock(conn):
            conn.commit()
            return []  # the flow that runs it is alive
        try:
            ids = _abandon_running(conn)
            conn.commit()
        finally:
            _unlock(conn)
            conn.commit()
    return ids


# -- running one --------------------------------------------------------------------------


@dataclass(frozen=True)
class Busy:
    """A flow could not start a cycle: another one runs."""

    reason: str
    run_id: int | None


@contextmanager
def hold_cycle(
    sessions: sessionmaker[Session],
    *,
    actor: str,
    reason: str,
    flow_run_id: str | None = None,
    params: dict[str, Any] | None = None,
    parent_version_id: int | None = None,
) -> Iterator[CycleRun | Busy]:
    """Start a cycle for the block: take the cycle lock, then the requested cycle (or a
    new one, asked for by `actor`), mark it running, and hold the lock until the block
    ends. Yields Busy (and starts nothing) when another cycle runs.

    The block must finish the cycle (`finish_cycle`); if it raises without doing so the
    cycle is marked failed here.
    """
    with _engine(sessions).connect() as conn:
        if not _try_lock(conn):
            conn.commit()
            active = active_cycle(sessions)
            yield Busy(
                "another cycle is running"
                + (f" (cycle {active.id}, asked by {active.requested_by})" if active else ""),
                active.id if active else None,
            )
            return
        conn.commit()  # the lock is the session's: it outlives this transaction
        try:
            _abandon_running(conn)
            conn.commit()
            run = _take_or_start(
                sessions,
                actor=actor,
                reason=reason,
                flow_run_id=flow_run_id,
                params=params or {},
                parent_version_id=parent_version_id,
            )
            try:
                yield run
            except BaseException as exc:
                failed = {"promoted": False, "error": str(exc)[:500]}
                finish_cycle(sessions, run.id, "failed", failed, None, only_if_running=True)
                raise
            # A block that returned without finishing: say so rather than block cycles.
            finish_cycle(
                sessions,
                run.id,
                "failed",
                {"promoted": False, "error": "the cycle ended without a result"},
                None,
                only_if_running=True,
            )
        finally:
            _unlock(conn)
            conn.commit()


def _take_or_start(
    sessions: sessionmaker[Session],
    *,
    actor: str,
    reason: str,
    flow_run_id: str | None,
    params: dict[str, Any],
    parent_version_id: int | None,
) -> CycleRun:
    values = {
        "status": RUNNING,
        "started_at": func.now(),
        "flow_run_id": flow_run_id,
        "params": params,
        "parent_version_id": parent_version_id,
    }
    # Twice at most: a request made between the update and the insert makes the insert
    # fail on the one-active-cycle index; the second round takes that request.
    for attempt in range(2):
        try:
            with sessions.begin() as s:
                taken = s.scalars(
                    update(TrainingRun)
                    .where(TrainingRun.status == REQUESTED)
                    .values(**values)
                    .returning(TrainingRun)
                ).first()
                if taken is None:
                    taken = TrainingRun(requested_by=actor, reason=reason, report={}, **values)
                    s.add(taken)
                    s.flush()
                s.refresh(taken)
                return _cycle(taken)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def set_stage(sessions: sessionmaker[Session], run_id: int, stage: str) -> None:
    with sessions.begin() as s:
        s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(stage=stage))


def finish_cycle(
    sessions: sessionmaker[Session],
    run_id: int,
    status: str,
    report: dict[str, Any],
    candidate_id: int | None,
    *,
    only_if_running: bool = False,
) -> None:
    with sessions.begin() as s:
        stmt = update(TrainingRun).where(TrainingRun.id == run_id)
        if only_if_running:
            stmt = stmt.where(TrainingRun.status == RUNNING)
        s.execute(
            stmt.values(
                status=status,
                report=report,
                candidate_version_id=candidate_id,
                finished_at=func.now(),
                stage=None,
            )
        )
