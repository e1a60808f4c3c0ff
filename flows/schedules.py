"""The flows' deployments and schedules, as `doodle flows serve` serves them."""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import RunnerDeployment

from core.settings import Settings
from flows.finetune import finetune
from flows.flywheel import flywheel
from flows.relabel import relabel
from flows.retention import retention
from flows.trigger import flywheel_trigger

# name -> the flow, for `doodle flows run NAME`
FLOWS: dict[str, Any] = {
    "flywheel": flywheel,
    "relabel": relabel,
    "finetune": finetune,
    "retention": retention,
    "trigger": flywheel_trigger,
}


def deployments(settings: Settings) -> list[RunnerDeployment]:
    """The nightly flywheel, the trigger that starts a cycle when one was asked for or
    enough new labels arrived (every DOODLE_FLYWHEEL_POLL_SECONDS), and the daily
    retention; the flywheel's parts stay deployed (unscheduled) to run by hand."""
    # Called outside an event loop, to_deployment returns the deployment itself.
    made: list[Any] = [
        flywheel.to_deployment(
            name="nightly",
            cron=settings.flywheel_cron,
            parameters={"requested_by": "schedule", "reason": "nightly"},
        ),
        flywheel_trigger.to_deployment(name="on-data", interval=settings.flywheel_poll_seconds),
        relabel.to_deployment(name="manual"),
        finetune.to_deployment(name="manual"),
        retention.to_deployment(name="daily", cron=settings.retention_cron),
    ]
    return made
