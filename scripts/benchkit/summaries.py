"""Figures of benchmark runs: summaries of closed- and open-loop runs, medians over runs,
ratios of two systems. The statistics themselves are `benchkit.stats`.

Pure: no I/O, no clock. Unit-tested in tests/unit/test_bench_stats.py and test_bench_kit.py.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchkit.stats import is_number, median, percentiles


@dataclass(frozen=True)
class Sample:
    """One closed-loop request: how long it took, whether it succeeded, whether it was right."""

    latency_ms: float
    ok: bool
    correct: bool = False
    error: str | None = None
    timings: Mapping[str, float] | None = None  # the product's own per-stage timings


@dataclass(frozen=True)
class Shot:
    """One open-loop request, sent on a schedule whatever the earlier ones became.

    Times are seconds from the sender's start; `status` is the HTTP status, 0 when the
    request failed without one (`error` names the exception); `info` is what the caller's
    judge read from the answer (a recognition id, an error kind).
    """

    index: int
    due_s: float
    sent_s: float
    latency_ms: float
    status: int
    error: str | None = None
    info: Any = None

    @property
    def lag_ms(self) -> float:
        """How late the sender was against its schedule."""
        return max(0.0, (self.sent_s - self.due_s) * 1000.0)


def summarize(samples: Sequence[Sample], elapsed_s: float) -> dict[str, Any]:
    """Figures of one closed-loop measurement.

    Throughput counts successful answers per second of wall time; latency percentiles are over
    every request, errors included (a request that timed out is not left out of p99); accuracy
    is over successful answers.
    """
    if elapsed_s <= 0:
        raise ValueError("elapsed time must be positive")
    latencies = [s.latency_ms for s in samples]
    ok = [s for s in samples if s.ok]
    errors = Counter(s.error or "error" for s in samples if not s.ok)
    pcts = percentiles(latencies)
    out: dict[str, Any] = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "error_kinds": dict(errors),
        "elapsed_s": elapsed_s,
        "throughput_rps": len(ok) / elapsed_s,
        "p50_ms": pcts["p50"],
        "p90_ms": pcts["p90"],
        "p99_ms": pcts["p99"],
        "max_ms": max(latencies) if latencies else math.nan,
        "mean_ms": statistics.fmean(latencies) if latencies else math.nan,
        "accuracy": sum(s.correct for s in ok) / len(ok) if ok else math.nan,
    }
    stages: dict[str, list[float]] = {}
    for s in ok:
        for name, value in (s.timings or {}).items():
            if is_number(value):
                stages.setdefault(name, []).append(float(value))
    if stages:
        out["stage_ms"] = {name: percentiles(v) for name, v in sorted(stages.items())}
    return out


def status_key(shot: Shot) -> str:
    """ "200", "429", ...; "200 bad_body" for an answer its judge refused; the exception's name
    for a request without an HTTP answer."""
    if not shot.status:
        return shot.error or "error"
    return f"{shot.status} {shot.error}" if shot.error else str(shot.status)


def summarize_shots(
    shots: Sequence[Shot], elapsed_s: float, ok_statuses: Iterable[int] = (200,)
) -> dict[str, Any]:
    """Figures of one open-loop run.

    `ok` are the answers with a status in `ok_statuses` that their judge took; latency
    percentiles are given over those (`ok_*`) and over every request (`all_*`: a fast 429
    pulls these down). `lag_*` say how late the sender itself was against its schedule: if
    they are large, the sender, not the server, limited the rate.
    """
    if elapsed_s <= 0:
        raise ValueError("elapsed time must be positive")
    wanted = set(ok_statuses)
    ok = [s for s in shots if s.status in wanted and s.error is None]
    statuses = Counter(status_key(s) for s in shots)
    all_p = percentiles(s.latency_ms for s in shots)
    ok_p = percentiles(s.latency_ms for s in ok)
    lag_p = percentiles((s.lag_ms for s in shots), (50, 99))
    due = [s.due_s for s in shots]
    sent = [s.sent_s for s in shots]
    return {
        "sent": len(shots),
        "ok": len(ok),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(1 for s in shots if s.status >= 500),
        "no_answer": sum(1 for s in shots if not s.status),
        "elapsed_s": elapsed_s,
        "offered_rps": _rate(due),
        "sent_rps": _rate(sent),
        "ok_rps": len(ok) / elapsed_s,
        **{f"ok_{k}_ms": v for k, v in ok_p.items()},
        **{f"all_{k}_ms": v for k, v in all_p.items()},
        "max_ms": max((s.latency_ms for s in shots), default=math.nan),
        "lag_p50_ms": lag_p["p50"],
        "lag_p99_ms": lag_p["p99"],
        "lag_max_ms": max((s.lag_ms for s in shots), default=math.nan),
        "in_flight_mean": _in_flight(shots),
        "examples": _examples(s for s in shots if s.status not in wanted or s.error),
    }


def _examples(shots: Iterable[Shot]) -> dict[str, str]:
    """The first thing an answer of each kind said (error text), by status key."""
    out: dict[str, str] = {}
    for s in shots:
        key = status_key(s)
        if key not in out and isinstance(s.info, str) and s.info:
            out[key] = s.info
    return out


def _in_flight(shots: Sequence[Shot]) -> float:
    """Requests waiting for their answer, on average from the first send to the last answer
    (if it is near the sender's thread count, the threads, not the schedule, set the pace)."""
    if not shots:
        return math.nan
    first = min(s.sent_s for s in shots)
    last = max(s.sent_s + s.latency_ms / 1000.0 for s in shots)
    return sum(s.latency_ms for s in shots) / 1000.0 / (last - first) if last > first else math.nan


def _rate(times: Sequence[float]) -> float:
    """Events a second over the span of their times (NaN for fewer than two, or no span)."""
    if len(times) < 2:
        return math.nan
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else math.nan


def aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians, key by key, of the numeric figures of several runs (nested dicts included).

    A key missing from some runs is the median of the runs that have it.
    """
    keys = list(dict.fromkeys(key for run in runs for key in run))
    out: dict[str, Any] = {}
    for key in keys:
        present = [run[key] for run in runs if key in run]
        if present and all(is_number(v) for v in present):
            out[key] = median(present)
        elif present and all(isinstance(v, Mapping) for v in present):
            out[key] = aggregate(present)
    return out


def ratios(product: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float]:
    """product / baseline for throughput and latencies (>1 throughput is better, <1 p99 is)."""
    out = {}
    for key, name in (
        ("throughput_rps", "throughput"),
        ("p50_ms", "p50"),
        ("p90_ms", "p90"),
        ("p99_ms", "p99"),
    ):
        p, b = product.get(key), baseline.get(key)
        out[name] = p / b if is_number(p) and is_number(b) and b else math.nan
    return out
