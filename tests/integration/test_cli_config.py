"""A variable that cannot work stops a command at once, naming it: no traceback, no start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.settings import PROJECT_ROOT


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("DATABASE_URL", "mysql://root:hunter2@db/test", "is not usable"),
        ("STORAGE_URL", "s3://key:hunter2@/bucket", "is not usable"),
        ("REDIS_URL", "http://cache", "is not usable"),
        ("DOODLE_BATCH_SIZE", "many", "must be an integer"),
        ("DOODLE_RATE_GUESSES", "9/day", "is not a rate"),
    ],
)
def test_a_bad_value_stops_the_start(name: str, raw: str, says: str, tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DOODLE_HOME": str(tmp_path), name: raw}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "api", "--port", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert f"Error: {name} {says}" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
