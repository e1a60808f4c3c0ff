"""Keeps `doodle run`'s processes up: whatever stops is started again, with back-off.

Two kinds of things are watched, both as a `Service` (a name, `alive()`, `start()`):

- `Child`: a process of ours (workers, beat, api, Prefect, flows), in its own process
  group (the terminal's Ctrl-C reaches only `doodle run`, which stops them in order),
  its output relayed line by line behind its name.
- `Server`: an embedded server that runs detached (Redis, Postgres); `doodle run` does
  not own its process, so it is polled and started again through `devtools.embedded`.

`Supervisor.check()` looks at every service (servers first: the children need them);
one found down is started again after a delay that doubles from `FIRST_DELAY` to
`MAX_DELAY`, and goes back to `FIRST_DELAY` once it stayed up `STABLE_SECONDS`. So a
crash loop costs a start every ten seconds, and a one-off crash half a second.
`Supervisor.stop()` sends SIGTERM to the children (last started first), waits, then
SIGKILLs the process groups of the stragglers (forked gunicorn and Celery workers too).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

import click

FIRST_DELAY = 0.5
MAX_DELAY = 10.0
STABLE_SECONDS = 30.0
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10.0
LABEL_WIDTH = 7  # "guesser", "prefect", "worker" line up


class Service(Protocol):
    name: str

    def alive(self) -> bool: ...

    def start(self) -> None: ...

    def how_it_ended(self) -> str: ...


class Output:
    """One writer for the children's lines and our own, so lines never interleave."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def say(self, message: str) -> None:
        # click.echo drops the bold when the output is not a terminal (a log file).
        with self.lock:
            click.echo(click.style(f"doodle run: {message}", bold=True), file=self.out)


@dataclass(eq=False)
class Child:
    """A process of ours; `start()` runs `argv` again once the last one ended."""

    name: str
    argv: list[str]
    env: dict[str, str]
    output: Output
    proc: subprocess.Popen[bytes] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> None:
        self.reap()  # what a dead parent left of its group (forked workers) goes first
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        self._reader = threading.Thread(target=self._relay, args=(self.proc,), daemon=True)
        self._reader.start()

    def _relay(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        label = self.name.rjust(LABEL_WIDTH)
        for raw in iter(proc.stdout.readline, b""):
            self.output.line(f"{label} | {raw.decode(errors='replace').rstrip()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def how_it_ended(self) -> str:
        code = None if self.proc is None else self.proc.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def signal(self, sig: signal.Signals, *, group: bool = False) -> None:
        if self.proc is None:
            return
        try:
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                os.kill(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self) -> None:
        """SIGKILL what is left of its group (forked workers too) and collect it."""
        if self.proc is None:
            return
        self.signal(signal.SIGKILL, group=True)
        self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass(eq=False)
class Server:
    """An embedded server that runs detached: polled, and started again through callables."""

    name: str
    is_alive: Callable[[], bool]
    restart: Callable[[], None]

    def alive(self) -> bool:
        return self.is_alive()

    def start(self) -> None:
        self.restart()

    def how_it_ended(self) -> str:
        return "is not running"


@dataclass(eq=False)
class Watch:
    """What the supervisor knows of one service: when it started, when to start it again."""

    service: Service
    started_at: float = field(default_factory=time.monotonic)
    delay: float = FIRST_DELAY
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    def __init__(
        self,
        output: Output | None = None,
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        stable_seconds: float = STABLE_SECONDS,
    ) -> None:
        self.output = output or Output()
        self.first_delay, self.max_delay = first_delay, max_delay
        self.stable_seconds = stable_seconds
        self.watches: list[Watch] = []

    @property
    def children(self) -> list[Child]:
        return [w.service for w in self.watches if isinstance(w.service, Child)]

    def watch(self, service: Service) -> None:
        """Watch a service that is already running (an embedded server)."""
        self.watches.append(Watch(service, delay=self.first_delay))

    def start(self, service: Service) -> None:
        """Start a service and watch it."""
        service.start()
        self.watch(service)

    def restarts(self, name: str) -> int:
        return next(w.restarts for w in self.watches if w.service.name == name)

    def check(self) -> None:
        """One look at every service: notice what went down, start what is due."""
        # Servers first: in a pass that restarts Redis and a worker, Redis comes back first.
        ordered = sorted(self.watches, key=lambda w: isinstance(w.service, Child))
        for watch in ordered:
            now = time.monotonic()
            service = watch.service
            if watch.restart_at is None:
                if service.alive():
                    continue
                if now - watch.started_at >= self.stable_seconds:
                    watch.delay = self.first_delay  # it had been fine: a fresh crash
                self.output.say(
                    f"{service.name} {service.how_it_ended()}; starting it again in "
                    f"{watch.delay:g}s"
                )
                watch.restart_at = now + watch.delay
                watch.delay = min(watch.delay * 2, self.max_delay)
            elif now >= watch.restart_at:
                try:
                    service.start()
                except Exception as exc:  # e.g. Postgres refusing while old backends exit
                    # The last line says why (a server log's tail ends with the FATAL).
                    reason = ([ln for ln in str(exc).splitlines() if ln.strip()] or [""])[-1]
                    self.output.say(
                        f"could not start {service.name} ({reason or type(exc).__name__}); "
                        f"trying again in {watch.delay:g}s"
                    )
                    watch.restart_at = now + watch.delay
                    watch.delay = min(watch.delay * 2, self.max_delay)
                    continue
                watch.restart_at, watch.started_at = None, time.monotonic()
                watch.restarts += 1
                self.output.say(f"{service.name} started again")

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            self.check()

    def stop(
        self, *, grace: float = STOP_GRACE_SECONDS, hurry: threading.Event | None = None
    ) -> None:
        """SIGTERM to every child (last started first), SIGKILL to the groups of stragglers.

        The parent alone gets SIGTERM: gunicorn and Celery stop their own forks in order."""
        children = self.children
        for child in reversed(children):
            if child.alive():
                child.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(c.alive() for c in children):
            if time.monotonic() > deadline or (hurry is not None and hurry.is_set()):
                break
            time.sleep(0.1)
        for child in children:
            if child.alive():
                self.output.say(f"{child.name} did not stop in time; killing it")
            child.reap()
