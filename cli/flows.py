"""`doodle flows ...`: serve the Prefect flows on their schedules, or run one now."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import urllib.request
from typing import Any

import click

from cli.context import resolved_settings
from core.settings import Settings

PREFECT_WAIT_SECONDS = 60.0


def _export(settings: Settings) -> None:
    """Flow runs start in child processes: hand them the resolved configuration."""
    os.environ["DATABASE_URL"] = settings.db_url
    os.environ["STORAGE_URL"] = settings.object_store_url
    if settings.redis_url:  # the retention flow clears removed doodles from Redis
        os.environ["REDIS_URL"] = settings.redis_url
    # Prefect reads its home at import and does not create missing parents.
    home = os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect"))
    os.makedirs(home, exist_ok=True)
    # The embedded Prefect API keeps state in SQLite; its telemetry heartbeat only adds
    # "database is locked" noise there, and a deployment has no need to phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The running Prefect server when there is one (`make run` starts one on
    # DOODLE_PREFECT_PORT), so its UI shows this command's runs; else Prefect starts a
    # temporary one of its own. Set before Prefect is imported: it reads it then.
    url = os.environ.get("PREFECT_API_URL") or local_prefect_api(settings.prefect_port)
    if url:
        os.environ["PREFECT_API_URL"] = url
        wait_for_prefect(url)


def local_prefect_api(port: int) -> str | None:
    """The API URL of a Prefect server answering on 127.0.0.1:port, else None."""
    url = f"http://127.0.0.1:{port}/api"
    return url if _healthy(url, timeout=1.0) else None


def wait_for_prefect(url: str, timeout: float = PREFECT_WAIT_SECONDS) -> None:
    """Wait for a Prefect API that is starting (`make run` starts it with the flows)."""
    deadline = time.monotonic() + timeout
    while not _healthy(url, timeout=2.0):
        if time.monotonic() > deadline:
            raise click.ClickException(f"the Prefect API at {url} does not answer")
        time.sleep(0.5)


def _healthy(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def headline(report: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return dataclasses.asdict(report)
    if not isinstance(report, dict):
        return {"result": report}
    keys = (
        "promoted",
        "candidate_version",
        "production_version",
        "golden_top1",
        "golden_n",
        "new_words",
        "training_examples",
        "reasons",
        "relabel",
        "timings",
        "erasure",
        "weights_deleted",
        # a cycle that did not start, and the trigger's answer
        "started",
        "busy",
        "reason",
        "new_labels",
        "run",
        "cycle",
    )
    return {k: report[k] for k in keys if k in report} or report


@click.group("flows")
def flows_group() -> None:
    """The flywheel's Prefect flows."""


@flows_group.command("serve")
def serve_command() -> None:
    """Serve the flows with their schedules (the flywheel nightly, the retention daily)
    against the Prefect API."""
    with resolved_settings() as settings:
        _export(settings)
        from prefect import serve

        from flows.schedules import deployments

        serve(*deployments(settings), pause_on_shutdown=False)


@flows_group.command("run")
@click.argument(
    "name", type=click.Choice(["flywheel", "relabel", "finetune", "retention", "trigger"])
)
def run_command(name: str) -> None:
    """Run one flow now, in this process, and print its headline figures as JSON."""
    with resolved_settings(redis=name == "retention") as settings:
        _export(settings)
        from flows.context import FlowContext, use_context, yield_cpu_to_serving
        from flows.schedules import FLOWS

        yield_cpu_to_serving(settings)  # beside `make run`, as its scheduled runs do
        context = FlowContext(settings)
        use_context(context)
        try:
            report = FLOWS[name]()
        finally:
            use_context(None)
            context.close()
    click.echo(json.dumps(headline(report), default=str))
