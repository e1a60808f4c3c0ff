"""`doodle players erase`: requests the erasure (sent to the workers), or with --wait does
it and prints the receipt; asking again prints the same receipt; an unknown id fails."""

from __future__ import annotations

import json

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import cli
from core.settings import Settings
from core.tasks import MAINTENANCE_QUEUE
from db.models import Player, Recognition
from tests.integration.test_erasure_removal import post
from workers.runtime import WorkerRuntime


@pytest.fixture
def cli_env(settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("STORAGE_URL", settings.object_store_url)
    monkeypatch.setenv("DOODLE_HOME", str(settings.home))


def test_erase_with_wait_prints_the_receipt(
    cli_env: None, worker_runtime: WorkerRuntime, seed_version: int, redis_client: redis.Redis
) -> None:
    post(worker_runtime.sessions, "p-cli")
    post(worker_runtime.sessions, "p-cli", png=True)

    result = CliRunner().invoke(cli, ["players", "erase", "p-cli", "--wait"])

    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    assert receipt["status"] == "done" and receipt["requested_by"].startswith("cli:")
    assert receipt["receipt"]["deleted"]["recognitions"] == 2
    assert "p-cli" not in result.output  # stdout and the log lines
    with worker_runtime.sessions() as s:
        assert s.get(Player, "p-cli") is None
        assert s.scalars(select(Recognition)).all() == []
    again = CliRunner().invoke(cli, ["players", "erase", "p-cli"])
    assert again.exit_code == 0 and json.loads(again.stdout)["id"] == receipt["id"]


def test_erase_without_wait_sends_it_to_the_workers(
    cli_env: None, worker_runtime: WorkerRuntime, redis_client: redis.Redis
) -> None:
    post(worker_runtime.sessions, "p-cli-queued", store=False)

    result = CliRunner().invoke(cli, ["players", "erase", "p-cli-queued"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "pending"
    assert redis_client.llen(MAINTENANCE_QUEUE) == 1
    missing = CliRunner().invoke(cli, ["players", "erase", "nobody"])
    assert missing.exit_code == 1 and "no player" in missing.output
