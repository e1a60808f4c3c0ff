"""Named subprocesses that the benchmarks and the end-to-end tests start and stop.

Each leads a session of its own, hence a process group: a terminal's Ctrl-C does not reach
it, and stopping it stops what it forked (gunicorn's and Celery's workers). Its output is
appended to `<log_dir>/<name>.log`, whose tail goes into the errors.

`doodle run` keeps its children up instead (devtools.supervisor: restarts, output relayed
to the terminal).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

STOP_GRACE_SECONDS = 20.0


class Processes:
    """`cwd`: where they start unless `start` says otherwise (None: ours)."""

    # Run in each child before it execs (None: nothing).
    preexec: Callable[[], None] | None = None

    def __init__(self, log_dir: Path, cwd: Path | None = None) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs[name] = log
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd or self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=self.preexec,
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
        """Raise, with the end of its log, if `name` has exited."""
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {proc.returncode}; its log ends:\n{self.log_tail(name)}"
            )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process group of `name` and forget it once it has exited."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
        self._logs.pop(name).close()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to every group (last started first), then SIGKILL to what is left of
        them after `grace` seconds (e.g. Celery pool children whose leader is gone)."""
        procs = list(self.procs.values())
        for proc in reversed(procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in reversed(procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()
        for log in self._logs.values():
            log.close()
        self._logs.clear()
