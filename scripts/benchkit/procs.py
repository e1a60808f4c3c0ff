"""Processes the benchmark starts (each in its own process group), ports, readiness, a fresh
database and Redis db."""

from __future__ import annotations

import contextlib
import http.client
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchkit import REPO_ROOT


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    last = ""
    while time.monotonic() - start < timeout:
        for name in names:
            procs.check_alive(name)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if ready(response.status):
                return time.monotonic() - start
            last = f"{response.status} {body[:300]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise RuntimeError(f"{names[0]} not ready after {timeout:.0f}s on {path}: {last}")


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


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create database `name` on the server of admin_url; its URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad database name {name!r}")
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        run_checked(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], os.environ, sql)
    return with_database(admin_url, name)


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
