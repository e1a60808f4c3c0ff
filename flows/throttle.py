"""Training that steps aside while the machine serves players.

Priority (flows.context.yield_cpu_to_serving) hands the CPU to a request the moment one
wakes, but training that runs in the idle time between requests still slows them: on a
quiet 2-vCPU machine recognition p99 rose 1.7x during a cycle, priority or not (the cores'
shared caches and sibling threads; scripts/serving_during_training.py). So while the rest
of the machine is busy, training also runs less: after each step it sleeps long enough to
use at most `duty` of the wall time. On a machine with nobody else at work it runs flat out.

"Busy" is read from /proc/stat (all CPUs' busy time) less this process's own CPU time, over
windows of at least `window` seconds: no signal from the API is needed, and on a machine
without /proc the throttle never engages.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROC_STAT = Path("/proc/stat")


def machine_busy_seconds(stat: Path = PROC_STAT) -> float | None:
    """Seconds every CPU spent busy since boot (None without /proc/stat)."""
    try:
        first = stat.read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(v) for v in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    return time.process_time()


@dataclass
class Throttle:
    """Call `step()` after each unit of training work."""

    duty: float  # share of wall time training may take while others are busy (0 < duty <= 1)
    others_busy: float = 0.25  # others' CPU, in cores, above which the machine is busy
    window: float = 0.1  # seconds between readings
    max_sleep: float = 1.0
    busy_seconds: Callable[[], float | None] = machine_busy_seconds
    cpu_seconds: Callable[[], float] = own_cpu_seconds
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    slept: float = 0.0  # seconds slept so far, for the log
    _mark: tuple[float, float | None, float] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.duty <= 1:
            raise ValueError(f"duty must be in (0, 1], got {self.duty}")

    def step(self) -> None:
        if self.duty >= 1:
            return
        now, busy, own = self.clock(), self.busy_seconds(), self.cpu_seconds()
        if self._mark is None:
            self._mark = (now, busy, own)
            return
        then, busy_then, own_then = self._mark
        elapsed = now - then
        if elapsed < self.window:
            return
        self._mark = (now, busy, own)
        if busy is None or busy_then is None:
            return
        worked = max(0.0, own - own_then)
        others = max(0.0, (busy - busy_then) - worked) / elapsed  # cores
        if others < self.others_busy:
            return
        # Worked `worked` seconds of CPU in this window: rest so that it is `duty` of it.
        pause = min(self.max_sleep, worked * (1 - self.duty) / self.duty)
        if pause > 0:
            self.sleep(pause)
            self.slept += pause
            self._mark = (self.clock(), self.busy_seconds(), self.cpu_seconds())
