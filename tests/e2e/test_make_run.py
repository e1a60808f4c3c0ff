"""`doodle run` (make run) keeps the stack up, shows Prefect, and stops on Ctrl-C.

One real `doodle run` on a bare machine's terms: embedded Postgres and Redis under a
scratch DOODLE_HOME, every port free and chosen here. While a client keeps asking
/healthz, the test kills the recognitions worker, the embedded Redis and the embedded
Postgres (SIGKILL each); each is back in seconds, the API never stops answering, and
a doodle posted afterwards is recognised. The Prefect server answers on the printed
port with its UI and the flows' deployments, and `doodle flows` finds it. SIGINT then
stops everything: `doodle run`, its children and the embedded servers.
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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from cli.flows import local_prefect_api
from core.processes import pid_alive
from core.settings import PROJECT_ROOT
from tests.fixtures.doodle_run import doodle_run_env

START_SECONDS = 240  # a first start: initdb, migrations, the seed model and sample import
RESTART_SECONDS = 30
STOP_SECONDS = 15
STAR = [[[0, 100, 200, 100, 0], [0, 200, 0, 0, 0]]]


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the live processes whose parent is `pid`."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and pid_alive(int(entry.name)):
                out[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
        except (OSError, IndexError, ValueError):
            continue
    return out


def _in_groups(groups: set[int]) -> set[int]:
    """The live processes in these process groups (a child's forks included)."""
    out = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) in groups:
                out.add(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return {pid for pid in out if pid_alive(pid)}


def _pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _until(what: str, condition, timeout: float, run: Run) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.proc.poll() is None, f"doodle run exited:\n{run.tail()}"
        assert time.monotonic() < deadline, f"{what} not within {timeout}s:\n{run.tail()}"
        time.sleep(0.2)


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    home: Path
    log: Path
    port: int
    prefect_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def child(self, needle: str) -> int | None:
        return next((p for p, cmd in _children(self.proc.pid).items() if needle in cmd), None)


@pytest.fixture
def home() -> Iterator[Path]:
    """Directly under the temp folder with o+x: as root, Postgres runs as another user
    who must reach its data (pytest's own tmp folders are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="doodle-run-"))
    path.chmod(0o755)
    try:
        yield path / "home"
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run(home: Path) -> Iterator[Run]:
    env, ports = doodle_run_env(home)
    home.mkdir(parents=True)
    log = home.parent / "doodle-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our SIGINT, not the terminal's, reaches it
        )
    running = Run(proc, home, log, ports["PORT"], ports["DOODLE_PREFECT_PORT"])
    try:
        yield running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Whatever it left (a failed test): the detached servers go too.
        for pid_file in (home / "redis" / "redis.pid", home / "postgres" / "postmaster.pid"):
            pid = _pid_file(pid_file)
            if pid is not None and pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


class HealthWatch:
    """A client asking /healthz every 50 ms; counts the answers that were not 200."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.asked = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(0.05):
            self.asked += 1
            try:
                r = requests.get(f"{self.base_url}/healthz", timeout=5)
                if r.status_code != 200:
                    self.failures.append(f"HTTP {r.status_code}")
            except requests.RequestException as exc:
                self.failures.append(type(exc).__name__)

    def __enter__(self) -> HealthWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_make_run_restarts_what_dies_shows_prefect_and_stops_on_ctrl_c(run: Run) -> None:
    _until("the banner", lambda: "Doodle API is up" in run.text(), START_SECONDS, run)
    prefect_ui = f"http://127.0.0.1:{run.prefect_port}"
    assert f"Prefect UI (the flywheel's runs and reports): {prefect_ui}" in run.text()
    key = (run.home / "dev-client-key").read_text().strip()
    headers = {"X-API-Key": key, "Prefer": "wait=10"}

    # The sweeper's schedule runs on its own, beside the workers.
    _until("the children", lambda: run.child("doodle beat") is not None, 10, run)
    workers = [cmd for cmd in _children(run.proc.pid).values() if " worker " in cmd]
    assert len(workers) == 2 and not any("--beat" in cmd for cmd in workers), workers

    with HealthWatch(run.base_url) as health:
        # The recognitions worker.
        worker = run.child("worker --queues recognitions")
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        _until(
            "a new worker",
            lambda: run.child("worker --queues recognitions") not in (None, worker),
            RESTART_SECONDS,
            run,
        )
        # The embedded Redis, then the embedded Postgres.
        for name, pid_file in (
            ("redis", run.home / "redis" / "redis.pid"),
            ("postgres", run.home / "postgres" / "postmaster.pid"),
        ):
            pid = _pid_file(pid_file)
            assert pid is not None and pid_alive(pid), name
            os.kill(pid, signal.SIGKILL)
            _until(
                f"{name} started again",
                lambda pf=pid_file, old=pid: (
                    (new := _pid_file(pf)) not in (None, old) and pid_alive(new)
                ),
                RESTART_SECONDS,
                run,
            )
            _until(
                f"{name}'s restart said",
                lambda n=name: f"doodle run: {n} started again" in run.text(),
                RESTART_SECONDS,
                run,
            )

        # Everything works again: a doodle goes through the restarted Redis, worker
        # and Postgres (the first tries may meet connections that died with them).
        deadline = time.monotonic() + RESTART_SECONDS
        while True:
            r = requests.post(
                f"{run.base_url}/v1/recognitions",
                json={"drawing": STAR},
                headers=headers,
                timeout=20,
            )
            if r.status_code == 200 and r.json()["status"] == "done":
                break
            assert time.monotonic() < deadline, (r.status_code, r.text, run.tail())
            time.sleep(1)
    assert health.asked > 20
    assert health.failures == [], health.failures
    text = run.text()
    assert "doodle run: worker was killed by SIGKILL; starting it again in 0.5s" in text
    assert "doodle run: worker started again" in text

    # Prefect: the UI and the API on the printed port, the flows' deployments on it, and
    # `doodle flows` finds it.
    api = f"{prefect_ui}/api"
    _until("Prefect's API", lambda: local_prefect_api(run.prefect_port) == api, 90, run)
    page = requests.get(prefect_ui, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()

    def deployed() -> set[str]:
        r = requests.post(f"{api}/deployments/filter", json={}, timeout=10)
        return {d["name"] for d in r.json()} if r.status_code == 200 else set()

    _until("the flows' deployments", lambda: {"nightly", "manual"} <= deployed(), 90, run)

    # Ctrl-C: everything stops within a few seconds.
    children = set(_children(run.proc.pid))
    tree = _in_groups(children) | {_pid_file(run.home / "redis" / "redis.pid") or 0}
    tree |= {_pid_file(run.home / "postgres" / "postmaster.pid") or 0}
    assert len(tree) > len(children) + 2  # forks of gunicorn, Prefect... are watched too
    started = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    try:
        code = run.proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"doodle run still running {STOP_SECONDS}s after SIGINT:\n{run.tail()}")
    took = time.monotonic() - started
    assert code == 0, run.tail()
    left = sorted(pid for pid in tree | _in_groups(children) if pid and pid_alive(pid))
    assert left == [], f"still running after doodle run stopped: {left}"
    said = [line for line in run.text().splitlines() if line.startswith("doodle run:")]
    print("\n".join(said))
    print(json.dumps({"stop_seconds": round(took, 1), "healthz_asked": health.asked}))
