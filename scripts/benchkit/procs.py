"""The benchmark's processes: readiness (a process that died fails it at once), commands run
to completion, a flushed Redis db. Starting and stopping them, ports, HTTP readiness and
fresh databases come from devtools."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from benchkit import REPO_ROOT
from devtools.net import wait_http
from devtools.processes import Processes


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
