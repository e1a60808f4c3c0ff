"""CPU accounting from /proc: seconds per component, and how busy the whole machine is."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stats() -> list[tuple[int, str, int, float]]:
    """(pid, comm, pgrp, cpu seconds) of every process we can read."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
        pgrp = int(fields[2])
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        out.append((int(entry.name), comm, pgrp, cpu))
    return out


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU seconds used by process groups (our servers), Postgres, Redis and this process.

    `groups` maps a component name (api, worker, baseline, storage) to a process group id.
    Processes that exit during a measurement are missed (none should). Postgres and Redis
    count every such process on the machine: other users' load counts too.
    """

    def __init__(self, groups: Mapping[str, int]) -> None:
        self.groups = dict(groups)

    def snapshot(self) -> dict[str, float]:
        totals = dict.fromkeys(self.groups, 0.0)
        totals["postgres"] = totals["redis"] = 0.0
        by_pgrp = {pgid: name for name, pgid in self.groups.items()}
        for _pid, comm, pgrp, cpu in _proc_stats():
            if pgrp in by_pgrp:
                totals[by_pgrp[pgrp]] += cpu
            elif comm == "postgres":
                totals["postgres"] += cpu
            elif comm.startswith("redis-server"):
                totals["redis"] += cpu
        t = os.times()
        totals["loadgen"] = t.user + t.system
        busy, total = _machine_cpu()
        totals["_machine_busy"], totals["_machine_total"] = busy / _TICK, total / _TICK
        return totals

    @staticmethod
    def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
        """CPU seconds per component, plus `_machine_busy`: the whole machine's (all cores)."""
        return {k: after[k] - before.get(k, 0.0) for k in after if k != "_machine_total"}


def cpu_figures(delta: Mapping[str, float], elapsed_s: float, answers: int) -> dict[str, Any]:
    """From a `CpuMeter.delta`: CPU seconds and ms per answer of each component, and the cores
    kept busy by ours (servers, load generator, Postgres, Redis) and by the rest of the machine
    (anything else running here: noise that steals CPU from the systems)."""
    cpu = {k: v for k, v in delta.items() if not k.startswith("_")}
    machine = delta.get("_machine_busy", 0.0)
    ours = sum(cpu.values())
    per = max(answers, 1)
    return {
        "cpu_s": cpu,
        "cpu_ms_per_ok_request": {k: v * 1000 / per for k, v in cpu.items()},
        "cores": {
            "machine": machine / elapsed_s,
            "measured": ours / elapsed_s,
            "other": max(machine - ours, 0.0) / elapsed_s,
        },
    }


def machine_busy_cores(interval: float = 1.0) -> float:
    """How many cores the whole machine keeps busy, measured over `interval` seconds."""
    b0, _ = _machine_cpu()
    time.sleep(interval)
    b1, _ = _machine_cpu()
    return (b1 - b0) / _TICK / interval


def wait_quiet(max_wait: float, threshold: float) -> float:
    """Wait (up to max_wait s) until the machine uses under `threshold` cores; the last load.

    -1 when not asked to wait (max_wait 0)."""
    if max_wait <= 0:
        return -1.0
    deadline = time.monotonic() + max_wait
    load = machine_busy_cores()
    while load >= threshold and time.monotonic() < deadline:
        load = machine_busy_cores()
    return load
