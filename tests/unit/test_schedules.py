"""The flows' deployments: the flywheel nightly on the cron of the settings."""

from __future__ import annotations

from core.settings import Settings
from flows.schedules import FLOWS, deployments


def test_the_flywheel_runs_on_the_configured_cron():
    by_flow = {d.flow_name: d for d in deployments(Settings(flywheel_cron="30 2 * * *"))}
    assert set(by_flow) == {"flywheel", "relabel", "finetune", "retention", "flywheel-trigger"}
    nightly = by_flow["flywheel"]
    assert nightly.name == "nightly"
    assert [s.schedule.cron for s in nightly.schedules] == ["30 2 * * *"]
    assert nightly.parameters == {"requested_by": "schedule", "reason": "nightly"}
    assert not by_flow["relabel"].schedules  # run by hand


def test_the_retention_runs_on_its_cron():
    by_flow = {d.flow_name: d for d in deployments(Settings(retention_cron="15 4 * * *"))}
    assert [s.schedule.cron for s in by_flow["retention"].schedules] == ["15 4 * * *"]


def test_every_runnable_flow_is_deployed():
    deployed = {d.flow_name for d in deployments(Settings())}
    assert deployed == {flow.name for flow in FLOWS.values()}


def test_the_trigger_looks_on_the_configured_interval():
    by_flow = {d.flow_name: d for d in deployments(Settings(flywheel_poll_seconds=45))}
    trigger = by_flow["flywheel-trigger"]
    assert trigger.name == "on-data"
    assert [s.schedule.interval.total_seconds() for s in trigger.schedules] == [45.0]
