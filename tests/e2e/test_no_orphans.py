"""`doodle run` killed by SIGKILL leaves nothing running and no port taken (devtools/watchdog.py).

One real `doodle run` (flows included) on embedded Postgres and Redis under a scratch
DOODLE_HOME, every port chosen here. Once it is up, the test notes its whole process tree
(children, their forks, the postmaster and its backends, Redis) and SIGKILLs `doodle run`
alone. Within KILLED_SECONDS every one of those processes is gone, no process runs with this
DOODLE_HOME in its environment (what started later is caught too), and the four ports are
free; a second `doodle run` on the same home and ports then comes up and stops on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.processes import pid_alive
from core.settings import PROJECT_ROOT
from devtools.net import port_open
from tests.fixtures.doodle_run import PORTS, doodle_run_env

START_SECONDS = 240  # a first start: initdb, migrations, the seed model and sample import
KILLED_SECONDS = 20  # the watchdog: 5 s grace for the children, a fast Postgres shutdown
STOP_SECONDS = 20


def _proc_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(root: int) -> set[int]:
    parents = {pid: _parent(pid) for pid in _proc_pids()}
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return {pid for pid in found if pid_alive(pid)}


def _with_home(home: Path) -> set[int]:
    """Live processes whose environment says DOODLE_HOME=home: whatever doodle run started."""
    needle = f"DOODLE_HOME={home}".encode()
    out = set()
    for pid in _proc_pids():
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                out.add(pid)
    return {pid for pid in out if pid_alive(pid)}


def _pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Runs:
    """Starts `doodle run` with one environment (same home and ports each time)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env, self.ports = doodle_run_env(home)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = home.parent / "doodle-run.log"

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "run"],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our signals, not a terminal's, reach it
            )
        self.procs.append(proc)
        return proc

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def until(self, what: str, condition: Callable[[], bool], timeout: float) -> float:
        started = time.monotonic()
        while not condition():
            assert time.monotonic() - started < timeout, (
                f"{what} not within {timeout}s:\n{self.tail()}"
            )
            time.sleep(0.2)
        return time.monotonic() - started

    def wait_up(self, proc: subprocess.Popen[bytes], banners: int) -> None:
        def up() -> bool:
            assert proc.poll() is None, f"doodle run exited:\n{self.tail()}"
            return self.text().count("Doodle API is up") >= banners

        self.until("the banner", up, START_SECONDS)

    def ports_taken(self) -> list[str]:
        return [name for name, port in self.ports.items() if port_open("127.0.0.1", port)]


@pytest.fixture
def runs() -> Iterator[Runs]:
    """Under the temp folder with o+x: as root, Postgres runs as another user."""
    path = Path(tempfile.mkdtemp(prefix="doodle-orphans-"))
    path.chmod(0o755)
    home = path / "home"
    home.mkdir()
    running = Runs(home)
    try:
        yield running
    finally:
        for proc in running.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Whatever a failed test left behind.
        for pid in _with_home(home) | {
            _pid_file(home / "redis" / "redis.pid") or 0,
            _pid_file(home / "postgres" / "postmaster.pid") or 0,
        }:
            if pid and pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def test_a_sigkilled_doodle_run_leaves_no_process_and_no_port(runs: Runs) -> None:
    first = runs.start()
    runs.wait_up(first, banners=1)
    runs.until(
        "the flows' child",
        lambda: any("flows serve" in _cmd(p) for p in _descendants(first.pid)),
        30,
    )

    tree = _descendants(first.pid)
    servers = {
        _pid_file(runs.home / "redis" / "redis.pid"),
        _pid_file(runs.home / "postgres" / "postmaster.pid"),
    }
    assert None not in servers and all(pid_alive(p) for p in servers if p), servers
    watched = tree | {p for p in servers if p} | _with_home(runs.home)
    postgres_backends = _descendants(_pid_file(runs.home / "postgres" / "postmaster.pid") or 0)
    watched |= postgres_backends
    # gunicorn's and the workers' forks, Prefect, the postmaster and its backends, Redis.
    assert len(watched) > 10, sorted(watched)
    runs.until("all four ports listening", lambda: len(runs.ports_taken()) == len(PORTS), 90)

    os.kill(first.pid, signal.SIGKILL)  # doodle run alone, no chance to clean up
    first.wait()
    took = runs.until(
        "every process it started gone and its ports free",
        lambda: (
            not {p for p in watched if pid_alive(p)}
            and not _with_home(runs.home)
            and not runs.ports_taken()
        ),
        KILLED_SECONDS,
    )
    assert "doodle run (watchdog): stopped its processes and the embedded" in runs.text()

    # The next start finds its ports free and the data where it was.
    second = runs.start()
    runs.wait_up(second, banners=2)
    second.send_signal(signal.SIGINT)
    try:
        code = second.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"doodle run still running {STOP_SECONDS}s after SIGINT:\n{runs.tail()}")
    assert code == 0, runs.tail()
    runs.until("the second run's processes gone", lambda: not _with_home(runs.home), STOP_SECONDS)
    assert runs.ports_taken() == []
    print(json.dumps({"killed_to_clean_seconds": round(took, 1), "watched": len(watched)}))


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
