"""flows.throttle: training steps aside only while the rest of the machine is busy."""

from __future__ import annotations

import pytest

from flows.throttle import Throttle, machine_busy_seconds


class FakeMachine:
    """A clock, the machine's busy seconds and this process's CPU seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = 0.0
        self.own = 0.0
        self.sleeps: list[float] = []

    def work(self, seconds: float, others_cores: float) -> None:
        """This process works `seconds` of wall time on one core beside others' load."""
        self.now += seconds
        self.own += seconds
        self.busy += seconds * (1 + others_cores)

    def train(self, throttle: Throttle, steps: int, others_cores: float) -> None:
        """`steps` training steps of 50 ms, each followed by the throttle's step."""
        for _ in range(steps):
            self.work(0.05, others_cores)
            throttle.step()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def throttle(self, duty: float, *, proc_stat: bool = True) -> Throttle:
        """A throttle reading this machine (`proc_stat` False: one without /proc/stat)."""
        return Throttle(
            duty,
            busy_seconds=(lambda: self.busy) if proc_stat else (lambda: None),
            cpu_seconds=lambda: self.own,
            clock=lambda: self.now,
            sleep=self.sleep,
        )


def test_an_otherwise_idle_machine_trains_flat_out():
    machine = FakeMachine()
    throttle = machine.throttle(0.25)
    machine.train(throttle, 50, others_cores=0.0)
    assert machine.sleeps == []


def test_a_busy_machine_gets_training_down_to_its_duty():
    machine = FakeMachine()
    throttle = machine.throttle(0.25)
    machine.train(throttle, 200, others_cores=1.0)
    worked = 200 * 0.05
    assert machine.sleeps, "never stepped aside"
    share = worked / machine.now
    assert 0.2 <= share <= 0.3, share
    assert throttle.slept == pytest.approx(sum(machine.sleeps))


def test_duty_one_never_sleeps_and_bad_duties_are_refused():
    machine = FakeMachine()
    throttle = machine.throttle(1.0)
    machine.train(throttle, 20, others_cores=2.0)
    assert machine.sleeps == []
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError):
            Throttle(bad)


def test_no_proc_stat_means_no_throttle(tmp_path):
    assert machine_busy_seconds(tmp_path / "missing") is None
    machine = FakeMachine()
    throttle = machine.throttle(0.25, proc_stat=False)
    machine.train(throttle, 20, others_cores=2.0)
    assert machine.sleeps == []


def test_the_real_proc_stat_counts_busy_time():
    first = machine_busy_seconds()
    assert first is not None and first > 0
    total = 0
    for i in range(2_000_000):  # a little CPU of our own
        total += i
    second = machine_busy_seconds()
    assert second is not None and second >= first
