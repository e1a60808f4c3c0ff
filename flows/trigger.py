"""Cycles started by data: `flywheel_trigger`, served every DOODLE_FLYWHEEL_POLL_SECONDS.

Each run looks once and starts the flywheel (in this flow run, as a subflow) when

- a cycle was requested (an admin, `POST /v1/admin/cycles`), or
- at least DOODLE_FLYWHEEL_MIN_NEW_LABELS new labels arrived since the last cycle
  started (`services.cycles.new_labels_since_last_cycle` says what counts).

Never two at once: while a cycle runs the trigger starts nothing; two triggers that look
at the same moment ask for the same cycle (the database keeps one requested) and only
one of them takes it (the cycle lock), the other returns `busy`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.context import flow_context
from flows.flywheel import flywheel
from services import cycles


@flow(name="flywheel-trigger", log_prints=True)
def flywheel_trigger() -> dict[str, Any]:
    """Start a cycle if one was asked for or enough new labels arrived; returns whether
    it started one, why (or why not), and the cycle's headline."""
    ctx = flow_context()
    sessions = ctx.sessions
    logger = get_run_logger()
    cycles.recover_abandoned(sessions)
    active = cycles.active_cycle(sessions)
    new_labels = cycles.new_labels_since_last_cycle(sessions)
    if active is not None and active.status == cycles.RUNNING:
        why = f"cycle {active.id} is running"
        logger.info("no cycle started: %s", why)
        return {"started": False, "reason": why, "new_labels": new_labels, "run": active.id}
    if active is None:
        threshold = ctx.settings.flywheel_min_new_labels
        if new_labels < threshold:
            why = f"{new_labels} new labels since the last cycle, fewer than {threshold}"
            logger.info("no cycle started: %s", why)
            return {"started": False, "reason": why, "new_labels": new_labels, "run": None}
        active = cycles.request_cycle(
            sessions, actor="trigger", reason=f"{new_labels} new labels since the last cycle"
        )
    logger.info("cycle %s: %s (asked by %s)", active.id, active.reason, active.requested_by)
    report = flywheel(requested_by=active.requested_by, reason=active.reason)
    if "busy" in report:
        return {
            "started": False,
            "reason": report["busy"],
            "new_labels": new_labels,
            "run": report.get("run"),
        }
    return {
        "started": True,
        "reason": active.reason,
        "new_labels": new_labels,
        "run": report.get("run"),
        "cycle": report,
    }
