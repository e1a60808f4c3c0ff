"""A variable that cannot work stops a command at once, naming it: no traceback, no start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.settings import PROJECT_ROOT


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DATABASE_URL", "mysql://root:hunter2@db/test"),
        ("STORAGE_URL", "s3://key:hunter2@/bucket"),
        ("REDIS_URL", "http://cache"),
    ],
)
def test_a_bad_url_stops_the_start(name: str, raw: str, tmp_path) -> None:
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
    assert f"Error: {name} is not usable" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
