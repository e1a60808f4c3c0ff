"""Processes the benchmark starts (each in its own process group), their readiness, and a
flushed Redis db. Ports, HTTP readiness and fresh databases come from devtools."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchkit import REPO_ROOT
from devtools.net import wait_http


class Processes:
    """Subprocesses in their own sessions; `stop()` ends each process group we started."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def pgid(self, name: str) -> int:
        """The process group of `name` (its leader's pid: each starts a new session)."""
        return self.procs[name].pid

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {proc.returncode}; its log ends:\n{self.log_tail(name)}"
            )

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            # Also the group's leftovers (e.g. Celery pool children) if the leader is gone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


def wait_ready(
    procs: Processes,
    names: Sequence[str],
    port: int,
    path: str,
    timeout: float = 180.0,
    ready: Callable[[int], bool] = lambda status: status == 200,
) -> float:
    """Poll GET path until `ready(status)`; seconds it took. Fails early if a process died."""
    start = time.monotonic()

    def none_died() -> bool:
        for name in names:
            procs.check_alive(name)  # raises with the log's tail
        return True

    last = wait_http(f"http://127.0.0.1:{port}{path}", timeout, ready=ready, keep_waiting=none_died)
    if last is not None:
        raise RuntimeError(f"{names[0]} not ready after {timeout:.0f}s on {path}: {last}")
    return time.monotonic() - start


def run_checked(
    argv: Sequence[str], env: Mapping[str, str], what: str, timeout: float = 300
) -> str:
    result = subprocess.run(
        list(argv), env=dict(env), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def doodle_command(given: str | None = None) -> list[str]:
    if given:
        return shlex.split(given)
    exe = Path(sys.executable).parent / "doodle"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]
