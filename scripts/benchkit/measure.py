"""One measured closed-loop run (load, figures, CPU) and the warm-up before measuring."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from benchkit.cpu import CpuMeter, cpu_figures
from benchkit.load import Target, run_closed_loop
from benchkit.stats import summarize


def measure(
    target: Target,
    bodies: Sequence[bytes],
    words: Sequence[str],
    meter: CpuMeter,
    args: argparse.Namespace,
    offset: int,
    duration: float | None = None,
) -> dict[str, Any]:
    """Closed loop at --concurrency for --requests (or `duration` / --duration seconds)."""
    before = meter.snapshot()
    samples, elapsed = run_closed_loop(
        target,
        bodies,
        words,
        concurrency=args.concurrency,
        requests=args.requests,
        duration=duration or args.duration,
        timeout=args.wait + 20,
        offset=offset,
    )
    summary = summarize(samples, elapsed)
    summary.update(cpu_figures(CpuMeter.delta(before, meter.snapshot()), elapsed, summary["ok"]))
    return summary


def warm_up(
    target: Target, bodies: Sequence[bytes], words: Sequence[str], n: int, concurrency: int
) -> None:
    if n <= 0:
        return
    samples, elapsed = run_closed_loop(
        target, bodies, words, concurrency=concurrency, requests=n, timeout=40
    )
    s = summarize(samples, elapsed)
    print(
        f"warm-up {target.name}: {s['ok']}/{s['requests']} ok, {s['throughput_rps']:.1f} req/s, "
        f"errors {s['error_kinds'] or 0}",
        flush=True,
    )


def one_line(summary: dict[str, Any]) -> str:
    """A progress line of a closed-loop run."""
    return (
        f"{summary['throughput_rps']:.1f} req/s, p50 {summary['p50_ms']:.0f} ms, "
        f"p99 {summary['p99_ms']:.0f} ms, errors {summary['errors']}"
        + (f" {summary['error_kinds']}" if summary["errors"] else "")
        + f", top-1 {summary['accuracy'] * 100:.1f}%, other load "
        f"{summary['cores']['other']:.2f} cores"
    )
