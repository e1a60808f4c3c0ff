"""Real processes: `doodle api` (gunicorn) and `doodle worker` (Celery), on the test services."""

from __future__ import annotations

import contextlib
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

STARTUP_SECONDS = 60


class Stack:
    """Starts and stops the product's processes; every child gets its own process group."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}

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
        }
        env.update(extra)
        return env

    def start(self, name: str, *args: str, **extra_env: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_file = log  # type: ignore[attr-defined]
        self.procs[name] = proc
        return proc

    def start_api(self, **extra_env: str) -> None:
        self.start(
            "api", "api", "--host", "127.0.0.1", "--workers", "2", "--threads", "8", **extra_env
        )

        def running() -> bool:
            if self.procs["api"].poll() is not None:
                raise RuntimeError(f"api exited early:\n{self.tail('api')}")
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
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.tail(name)}")
            if " ready." in (self.logs / f"{name}.log").read_text(errors="replace"):
                return time.monotonic()
            time.sleep(0.05)
        raise RuntimeError(f"{name} not ready in {STARTUP_SECONDS}s:\n{self.tail(name)}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
        proc.log_file.close()  # type: ignore[attr-defined]

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            self.kill(name)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def stack(settings: Settings, seed_version: int, tmp_path: Path) -> Iterator[Stack]:
    settings.home.mkdir(parents=True, exist_ok=True)
    running = Stack(settings, tmp_path)
    try:
        yield running
    finally:
        running.stop()
