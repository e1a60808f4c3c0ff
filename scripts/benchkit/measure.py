"""One measured closed-loop run (load, figures, CPU) and the warm-up before measuring."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchkit.cpu import CpuMeter, cpu_figures
from benchkit.load import Target, run_closed_loop
from benchkit.summaries import summarize


def measure(
    target: Target,
    bodies: Sequence[bytes],
    words: Sequence[str],
    meter: CpuMeter,
    args: argparse.Namespace,
    offset: int,
    duration: float | None = None,
    settle: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Closed loop at --concurrency for --requests (or `duration` / --duration seconds).

    `settle` waits for work a system still owes after its last answer (the product writes
    kept doodles to object storage after answering): the run, its throughput and its CPU
    include that wait, so deferred work is never left for the next run to pay for.
    """
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
    settled = time.perf_counter()
    if settle is not None:
        settle()
    settle_s = time.perf_counter() - settled
    elapsed += settle_s
    summary = summarize(samples, elapsed)
    summary["settle_s"] = settle_s
    summary.update(cpu_figures(CpuMeter.delta(before, meter.snapshot()), elapsed, summary["ok"]))
    return summary


def objects_written(db_url: str, timeout: float = 120.0) -> Callable[[], None]:
    """A `settle` for the product: wait until every kept doodle's object is written."""

    def settle() -> None:
        import psycopg

        from benchkit.depth import libpq_url

        deadline = time.monotonic() + timeout
        with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM recognitions WHERE consent_store AND "
                    "status = 'done' AND stored_at IS NULL"
                ).fetchone()
                if row is not None and row[0] == 0:
                    return
                time.sleep(0.02)
        raise RuntimeError(f"kept doodles still unwritten after {timeout:.0f}s")

    return settle


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
