"""Scenario `guesses` (product only): live guesses beside the recognition load.

Each repeat measures, for --duration seconds (20 by default), recognitions alone (closed loop at
--concurrency, `Prefer: wait`) and recognitions with an open-loop sender of `POST /v1/guesses`
at --guess-rate a second beside them (the order alternates between repeats). Guesses are partial
drawings, as a client sends while the player draws: the first k strokes of real drawings.
Target: guesses answer with p99 <= 20 ms (of their 200 answers); 429 (shed) and 503 are counted.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from benchkit import report
from benchkit.cpu import wait_quiet
from benchkit.inputs import guess_bodies
from benchkit.load import Target, judge_guess, run_open_loop, sender_threads
from benchkit.measure import measure, objects_written, one_line, warm_up
from benchkit.session import Session
from benchkit.stats import is_number
from benchkit.summaries import Shot, aggregate, ratios, summarize_shots

GUESS_PATH = "/v1/guesses"
EXPECTED = ("200", "429", "503")  # anything else is an error of the endpoint or the bench
DEFAULT_DURATION_S = 20.0
P99_TARGET_MS = 20.0
T = TypeVar("T")


def verdict(guess_runs: Sequence[Mapping[str, Any]], p99_ms: float) -> dict[str, Any]:
    """Whether the run is sound (every guess answered 200, 429 or 503; some 200) and whether
    the median p99 of the 200 answers meets the target (reported; not a failure of the run)."""
    problems, checks = [], []
    other: dict[str, int] = {}
    for g in guess_runs:
        for status, n in g["statuses"].items():
            if status not in EXPECTED:
                other[status] = other.get(status, 0) + n
    if other:
        problems.append(
            "unexpected guess answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(other.items()))
        )
    else:
        checks.append("every guess answered 200, 429 or 503")
    if not sum(g["ok"] for g in guess_runs):
        problems.append("no guess was answered 200")
    met = bool(is_number(p99_ms) and p99_ms <= P99_TARGET_MS)
    target = {"p99_ms": p99_ms, "limit_ms": P99_TARGET_MS, "met": met}
    return {"ok": not problems, "checks": checks, "problems": problems, "target": target}


def _guesses(
    target: Target, bodies: Sequence[bytes], rate: float, duration: float, threads: int, offset: int
) -> tuple[list[Shot], float]:
    return run_open_loop(
        target,
        bodies,
        rate=rate,
        duration=duration,
        threads=threads,
        judge=judge_guess,
        timeout=10,
        offset=offset,
    )


def _background(fn: Callable[[], T]) -> Callable[[], T]:
    """Start fn() on a thread now; the function returned waits for it and gives its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def run(session: Session) -> int:
    args = session.args
    product = session.start_systems(["product"])["product"]
    meter = session.meter({"product": product})
    bodies, words = session.bodies, session.words
    duration = args.duration or DEFAULT_DURATION_S
    gtarget = product.target.with_headers(path=args.guess_path, Prefer=None)
    gbodies = guess_bodies(session.drawings)
    threads = args.sender_threads or sender_threads(args.guess_rate, latency_s=1.0)
    per_run = round(args.guess_rate * duration)

    warm_up(product.target, bodies, words, args.warmup, args.concurrency)
    shots, elapsed = _guesses(gtarget, gbodies, args.guess_rate, 2.0, threads, offset=0)
    probe = summarize_shots(shots, elapsed)
    print(f"warm-up guesses: {report.statuses_line(probe['statuses'])}", flush=True)
    for line in report.examples_lines(probe):
        print(line, flush=True)
    if not probe["ok"]:
        print(
            f"{report.LOUD} POST {args.guess_path} answered no 200 in the warm-up "
            f"({report.statuses_line(probe['statuses'])}); measuring anyway",
            flush=True,
        )

    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        modes = ("alone", "with_guesses") if repeat % 2 == 0 else ("with_guesses", "alone")
        for mode in modes:
            session.check_alive(product)
            quiet = wait_quiet(args.quiet_wait, args.quiet_cores)
            offset = repeat * 101  # recognitions: the same drawings in both modes of a repeat
            guessed = None
            if mode == "with_guesses":
                guessed = _background(
                    functools.partial(
                        _guesses,
                        gtarget,
                        gbodies,
                        args.guess_rate,
                        duration,
                        threads,
                        (repeat + 1) * per_run,
                    )
                )
            summary = measure(
                product.target,
                bodies,
                words,
                meter,
                args,
                offset,
                duration,
                settle=objects_written(product.db_url),
            )
            if guessed is not None:
                summary["guesses"] = summarize_shots(*guessed())
            summary.update(mode=mode, repeat=repeat, load_before_cores=quiet)
            runs.append(summary)
            line = f"run {repeat + 1}/{args.repeats} {mode}: recognitions {one_line(summary)}"
            if "guesses" in summary:
                g = summary["guesses"]
                line += (
                    f"; guesses {report.statuses_line(g['statuses'])}, 200 p50/p99 "
                    f"{report.fmt(g['ok_p50_ms'])}/{report.fmt(g['ok_p99_ms'])} ms"
                )
            print(line, flush=True)

    medians = {m: aggregate([r for r in runs if r["mode"] == m]) for m in ("alone", "with_guesses")}
    guess_runs = [r["guesses"] for r in runs if "guesses" in r]
    p99 = medians["with_guesses"].get("guesses", {}).get("ok_p99_ms", float("nan"))
    result: dict[str, Any] = {
        "scenario": "guesses",
        "config": report.config(args, session.storage),
        "environment": report.environment(),
        "duration_s": duration,
        "threads": threads,
        "median": medians,
        "ratio": ratios(medians["with_guesses"], medians["alone"]),
        "runs": runs,
        "verdict": verdict(guess_runs, p99),
    }
    print()
    print(report.guesses_report(result))
    report.write_json(args.out, result)
    return 0 if result["verdict"]["ok"] else 1
