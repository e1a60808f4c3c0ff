"""Timing functions of the product from outside: wrap `owner.attr`, count wall and CPU
seconds and calls by name, put the original back afterwards (scripts/flywheel_bench.py).

Unit-tested in tests/unit/test_flywheel_bench.py.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timers:
    """Wall seconds, CPU seconds (this process, all its threads) and calls of wrapped
    functions, by name."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.cpu[name] += time.process_time() - cpu
                self.calls[name] += 1

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "seconds": round(self.seconds[name], 3),
                "cpu_seconds": round(self.cpu[name], 3),
                "calls": self.calls[name],
            }
            for name in sorted(self.seconds, key=lambda k: -self.seconds[k])
        }


@contextlib.contextmanager
def instrumented(timers: Timers, targets: Sequence[tuple[Any, str, str]]) -> Iterator[None]:
    """Replace each `owner.attr` by a timed wrapper named `name`; restore them afterwards."""
    missing = object()
    saved = []
    try:
        for owner, attr, name in targets:
            # Restore exactly what was there (a staticmethod stays one; an inherited
            # attribute is deleted again), but wrap what a caller actually gets.
            saved.append((owner, attr, vars(owner).get(attr, missing)))
            setattr(owner, attr, timers.wrap(name, getattr(owner, attr)))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is missing:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
