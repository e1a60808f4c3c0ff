"""What a flow run talks to, built from the environment once per process.

Flow runs start in processes of their own (Prefect's runner), so they read the same
environment as every other `doodle` process; nothing is passed as a parameter that
Prefect would have to serialise.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

import redis
import torch

from core.settings import Settings
from flows.throttle import Throttle
from ml.network import QuickDrawNet
from services import artifacts
from services.connections import Connections

log = logging.getLogger(__name__)


class FlowContext(Connections):
    # Set where flows share the machine with serving (flow_context): training steps aside.
    training_throttle: Throttle | None = None

    @cached_property
    def redis(self) -> redis.Redis:
        """What removing doodles clears in Redis (the retention flow)."""
        return redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2)

    def close(self) -> None:
        if "redis" in self.__dict__:
            self.__dict__["redis"].close()
        super().close()

    def load_version(self, version_id: int) -> tuple[QuickDrawNet, list[str]]:
        """Raises services.errors.UnknownVersion (a LookupError) for an unknown id."""
        return artifacts.load_version(self.sessions, self.storage, version_id)

    def alias_version(self, alias: str) -> int | None:
        ref = artifacts.alias_ref(self.sessions, alias)
        return None if ref is None else ref.version_id


def yield_cpu_to_serving(settings: Settings) -> None:
    """Make this process background work: every thread at `flow_nice` and, on Linux, under
    the SCHED_IDLE policy (threads started later inherit both); torch at
    `flow_torch_threads` at most. Flows run beside the API and the workers (`make run`, a
    small host); a cycle's relabelling, training and evaluation at the same priority took
    their CPU (recognition p50 23 -> 34 ms, issue 18). Niceness weighs the flows' share of
    a busy CPU; under SCHED_IDLE a request's thread that wakes preempts them at once. Neither
    helps where training runs in idle CPU time and slows serving through the core's shared
    caches (scripts/serving_during_training.py). Priority only ever goes down here."""
    if not 0 <= settings.flow_nice <= 19:
        raise ValueError(f"DOODLE_FLOW_NICE must be 0-19, got {settings.flow_nice}")
    if settings.flow_torch_threads < 1:
        raise ValueError(
            f"DOODLE_FLOW_TORCH_THREADS must be 1 or more: {settings.flow_torch_threads}"
        )
    torch.set_num_threads(min(torch.get_num_threads(), settings.flow_torch_threads))
    idle = settings.flow_sched_idle and hasattr(os, "SCHED_IDLE")
    # On Linux niceness and policy belong to a thread: set each one's (the process's own id
    # names the main thread only). Elsewhere the process's is all there is.
    tasks = Path("/proc/self/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < settings.flow_nice:
                os.setpriority(os.PRIO_PROCESS, tid, settings.flow_nice)
            if idle:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (ProcessLookupError, PermissionError) as exc:  # a thread that just ended
            log.debug("priority of thread %s unchanged: %s", tid, exc)


_current: FlowContext | None = None


def use_context(context: FlowContext | None) -> None:
    """Set the context flows use in this process (the CLI and the tests call this).

    The caller owns the context it passes and closes it.
    """
    global _current
    _current = context


def flow_context() -> FlowContext:
    """The context of this process's flow runs. Made on first use in a process that runs
    flows and nothing else (a flow run that Prefect's runner started for `doodle flows
    serve`), which therefore yields the CPU to serving from then on, and whose training
    runs at most DOODLE_FLOW_TRAIN_DUTY of the time while the machine is busy otherwise."""
    global _current
    if _current is None:
        settings = Settings.from_env()
        yield_cpu_to_serving(settings)
        _current = FlowContext(settings)
        _current.training_throttle = Throttle(settings.flow_train_duty)
    return _current
