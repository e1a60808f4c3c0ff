"""What `doodle run` started stops when it dies, even by SIGKILL.

`doodle run` stops its children and the embedded servers itself on Ctrl-C or SIGTERM; a
SIGKILL (or the OOM killer) gives it no chance, and its children (each in a process group
of its own) and the detached Postgres and Redis lived on, holding the ports. So before it
starts anything, `doodle run` starts this watchdog, in a session of its own:

- the watchdog reads a pipe only `doodle run` holds (not inherited by the children); the
  pipe ends when `doodle run` does, however it ends;
- every child gets `DOODLE_RUN_ID=<id>` in its environment, which its own forks inherit
  (gunicorn's workers, Celery's pool, Prefect's flow runs); the watchdog finds them by it,
  so none is missed, whatever group or session it runs in;
- "done" on the pipe: `doodle run` stopped everything itself; the watchdog just exits.
  End of the pipe without it: SIGTERM to every marked process, SIGKILL after
  `GRACE_SECONDS`, then the embedded servers that no live process holds (devtools.embedded's
  handles) stop: Postgres with a fast shutdown, Redis with its own SIGTERM save.

    with Watchdog() as run_id:   # in doodle run
        env[MARKER] = run_id     # the children's environment
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType

MARKER = "DOODLE_RUN_ID"
DONE = b"done\n"
GRACE_SECONDS = 5.0
KILL_WAIT_SECONDS = 5.0
SERVER_STOP_SECONDS = 5.0
POLL_SECONDS = 0.1


class Watchdog:
    """Starts the watchdog process; `__exit__` tells it all went well and waits for it."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex
        self.proc: subprocess.Popen[bytes] | None = None
        self.pipe: int | None = None

    def __enter__(self) -> str:
        read_end, self.pipe = os.pipe()  # not inheritable: only we hold the write end
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "devtools.watchdog", self.run_id],
                stdin=read_end,
                start_new_session=True,  # the terminal's Ctrl-C and a kill of our group miss it
                cwd=Path.cwd(),
            )
        finally:
            os.close(read_end)
        return self.run_id

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Here `doodle run` has stopped its children and servers itself (or never started
        # them): the watchdog has nothing to do, and must be gone before we are.
        assert self.pipe is not None and self.proc is not None
        with contextlib.suppress(OSError):
            os.write(self.pipe, DONE)
        os.close(self.pipe)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- the process


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; its new parent reaps it


def marked_processes(run_id: str) -> list[int]:
    """Live processes whose environment carries this run's marker (not ours)."""
    needle = f"{MARKER}={run_id}".encode()
    me = os.getpid()
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if pid != me and _environ_has(pid, needle) and _alive(pid)]


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        left = [p for p in left if _alive(p)]
    return left


def stop_children(run_id: str) -> None:
    """SIGTERM to every marked process, SIGKILL to what is left after GRACE_SECONDS."""
    pids = marked_processes(run_id)
    _signal_all(pids, signal.SIGTERM)
    left = _wait_gone(pids, GRACE_SECONDS)
    # Forked meanwhile (a gunicorn worker replaced as it stopped) or still stopping.
    left = sorted(set(left) | set(marked_processes(run_id)))
    if left:
        _signal_all(left, signal.SIGKILL)
        _wait_gone(left, KILL_WAIT_SECONDS)


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"doodle run (watchdog): {message}", flush=True)


def main(run_id: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe's end concerns us
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    said = b""
    while chunk := os.read(0, 64):
        said += chunk
    if said.endswith(DONE):
        return 0
    _say("doodle run died without stopping what it started; stopping it")
    stop_children(run_id)
    from core.settings import Settings
    from devtools.embedded import EmbeddedServices

    stopped = EmbeddedServices(Settings.from_env()).stop_unheld(SERVER_STOP_SECONDS)
    _say("stopped its processes" + (f" and the embedded {', '.join(stopped)}" if stopped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
