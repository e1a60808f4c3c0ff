"""Flow runs yield the CPU to serving (flows.context.yield_cpu_to_serving): in a process of
its own, as a flow run has, every thread ends up at DOODLE_FLOW_NICE and under SCHED_IDLE,
threads started later inherit both, and torch uses DOODLE_FLOW_TORCH_THREADS at most. (The
effect on recognition latency during a cycle: scripts/serving_during_training.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core.settings import PROJECT_ROOT

# A thread that exists before, and one started after, the call; then what each one's
# niceness is (on Linux a niceness belongs to a thread).
PROBE = """
import json, os, threading, torch
from core.settings import Settings
from flows.context import yield_cpu_to_serving

torch.set_num_threads(2)
go = threading.Event()
niceness = {}

policy = {}

def report(name):
    go.wait()
    niceness[name] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    policy[name] = os.sched_getscheduler(threading.get_native_id())

before = threading.Thread(target=report, args=("before",), daemon=True)
before.start()
yield_cpu_to_serving(Settings.from_env())
after = threading.Thread(target=report, args=("after",), daemon=True)
after.start()
go.set()
before.join()
after.join()
niceness["main"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
policy["main"] = os.sched_getscheduler(threading.get_native_id())
threads = torch.get_num_threads()
print(json.dumps({"niceness": niceness, "policy": policy, "torch_threads": threads}))
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` in a Python process of its own, as a flow run has, with `env` added."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _probe(**env: str) -> dict:
    done = _python(PROBE, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_flow_process_runs_nicer_idle_scheduled_with_bounded_torch_threads():
    start = os.getpriority(os.PRIO_PROCESS, 0)
    result = _probe(DOODLE_FLOW_NICE="12", DOODLE_FLOW_TORCH_THREADS="1")
    assert result["torch_threads"] == 1
    nice = max(12, start)
    assert result["niceness"] == {"before": nice, "after": nice, "main": nice}
    assert set(result["policy"].values()) == {os.SCHED_IDLE}


def test_both_can_be_turned_off():
    start = os.getpriority(os.PRIO_PROCESS, 0)
    result = _probe(
        DOODLE_FLOW_NICE="0", DOODLE_FLOW_SCHED_IDLE="false", DOODLE_FLOW_TORCH_THREADS="2"
    )
    assert set(result["niceness"].values()) == {start}
    assert set(result["policy"].values()) == {os.sched_getscheduler(0)}
    assert result["torch_threads"] == 2


def test_an_out_of_range_niceness_is_refused_with_its_name():
    done = _python(PROBE, DOODLE_FLOW_NICE="40")
    assert done.returncode != 0
    assert "DOODLE_FLOW_NICE must be 0-19" in done.stderr


def test_a_flow_runs_process_trains_at_the_settings_duty():
    # flow_context() is what a flow run's process makes first: it steps its training aside.
    code = (
        "from flows.context import flow_context; ctx = flow_context(); "
        "print(ctx.training_throttle.duty); ctx.close()"
    )
    done = _python(code, DOODLE_FLOW_TRAIN_DUTY="0.5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0.5"
