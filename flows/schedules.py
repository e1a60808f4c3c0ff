"""The flows' deployments and schedules, as `doodle flows serve` serves them."""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import RunnerDeployment

from core.settings import Settings
from flows.finetune import finetune
from flows.flywheel import flywheel
from flows.relabel import relabel
from flows.retention import retention

# name -> the flow, for `doodle flows run NAME`
FLOWS: dict[str, Any] = {
    "flywheel": flywheel,
    "relabel": relabel,
    "finetune": finetune,
    "retention": retention,
}


def deployments(settings: Settings) -> list[RunnerDeployment]:
    """The nightly flywheel and the daily retention; the flywheel's parts stay deployed
    (unscheduled) to run by hand."""
    # Called outside an event loop, to_deployment returns the deployment itself.
    made: list[Any] = [
        flywheel.to_deployment(name="nightly", cron=settings.flywheel_cron),
        relabel.to_deployment(name="manual"),
        finetune.to_deployment(name="manual"),
        retention.to_deployment(name="daily", cron=settings.retention_cron),
    ]
    return made
