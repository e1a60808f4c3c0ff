"""Real processes: `doodle api` (gunicorn) and `doodle worker` (Celery), on the test services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from devtools.net import free_port, wait_http
from devtools.processes import Processes

STARTUP_SECONDS = 60


class Stack:
    """Starts and stops the product's processes; every child gets its own process group."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes = Processes(logs)

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return self.processes.procs

    def env(self, **extra: str) -> dict[str, str]:
        s = self.settings
        env = {
            **os.environ,
            "DATABASE_URL": s.db_url,
            "REDIS_URL": s.broker_url,
            "STORAGE_URL": s.object_store_url,
            "DOODLE_CLIENT_KEYS": ",".join(s.client_keys),
            "DOODLE_ADMIN_TOKENS": ",".join(s.admin_tokens),
            "DOODLE_HOME": str(s.home),
            "PORT": str(self.port),
            # These tests send hundreds of doodles a second from one key, faster than its
            # default limit (300 a second); the limits have tests of their own.
            "DOODLE_RATE_RECOGNITIONS": "100000/second",
        }
        env.update(extra)
        return env

    def start(self, name: str, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "cli.main", *args]
        return self.processes.start(name, argv, self.env(**extra_env))

    def start_api(self, **extra_env: str) -> None:
        self.start(
            "api", "api", "--host", "127.0.0.1", "--workers", "2", "--threads", "8", **extra_env
        )

        def running() -> bool:
            self.processes.check_alive("api")  # raises with the end of its log
            return True

        last = wait_http(f"{self.base_url}/readyz", STARTUP_SECONDS, keep_waiting=running, poll=0.2)
        if last is not None:
            raise RuntimeError(f"api not ready in {STARTUP_SECONDS}s ({last}):\n{self.tail('api')}")

    def start_worker(self, name: str = "worker", *args: str, **extra_env: str) -> None:
        self.start(name, "worker", "--concurrency", "2", *args, **extra_env)

    def wait_worker_ready(self, name: str = "worker") -> float:
        """Block until the Celery worker says it is ready; returns time.monotonic() then."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            self.processes.check_alive(name)
            if " ready." in (self.logs / f"{name}.log").read_text(errors="replace"):
                return time.monotonic()
            time.sleep(0.05)
        raise RuntimeError(f"{name} not ready in {STARTUP_SECONDS}s:\n{self.tail(name)}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.processes.kill(name, sig)

    def stop(self) -> None:
        self.processes.stop(grace=15)

    def tail(self, name: str, lines: int = 40) -> str:
        return self.processes.log_tail(name, lines)


@pytest.fixture
def stack(settings: Settings, seed_version: int, tmp_path: Path) -> Iterator[Stack]:
    settings.home.mkdir(parents=True, exist_ok=True)
    running = Stack(settings, tmp_path)
    try:
        yield running
    finally:
        running.stop()
