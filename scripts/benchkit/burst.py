"""Scenario `burst` (product only): is a burst of `--burst-factor` times the sustained rate
for `--burst-seconds` absorbed? Every accepted doodle answered, the queue drains, no 5xx.

1. The sustained rate R: a closed-loop run at --concurrency (or `--rate R`).
2. Open loop: POST /v1/recognitions without `Prefer: wait` at factor x R a second, while a
   sampler records the Celery queue length and the unfinished rows every --sample-interval.
3. After the burst, sampling goes on until nothing is queued or unfinished (--drain-timeout);
   then every accepted id is looked up: it must be done (or failed, listed).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from benchkit import report
from benchkit.cpu import CpuMeter, cpu_figures, wait_quiet
from benchkit.depth import DepthSampler, depth_timeline, drain_time, outcomes, peaks
from benchkit.load import judge_accepted, run_open_loop, sender_threads
from benchkit.measure import measure, objects_written, one_line, warm_up
from benchkit.session import Session
from benchkit.summaries import summarize_shots

LEAD_S = 0.3  # the sampler starts this long before the burst: the timeline starts empty


def verdict(sender: Mapping[str, Any], done: Mapping[str, Any], drain: Mapping[str, Any]) -> dict:
    """Pass/fail of a burst from the sender's summary, the outcomes and the drain time."""
    problems, checks = [], []
    if sender["server_errors"]:
        problems.append(f"{sender['server_errors']} answers were 5xx")
    else:
        checks.append("no 5xx")
    if sender["no_answer"]:
        problems.append(f"{sender['no_answer']} requests got no HTTP answer")
    unanswered = len(done["unfinished"]) + len(done["missing"])
    if unanswered:
        problems.append(f"{unanswered} accepted doodles not finished")
    elif done["accepted"]:
        checks.append(
            f"all {done['accepted']} accepted doodles finished ({len(done['failed'])} failed)"
        )
    else:
        problems.append("nothing was accepted")
    if drain["drained_at_s"] is None:
        problems.append("the queue did not drain")
    else:
        checks.append(f"drained {drain['from_end_s']:.1f} s after the burst")
    return {"ok": not problems, "checks": checks, "problems": problems}


def _wait_empty(sampler: DepthSampler, timeout: float) -> None:
    """Before the burst: wait for what earlier runs left (a 202 after a timed-out wait)."""
    deadline = time.monotonic() + timeout
    while True:
        s = sampler.sample()
        if s.valid and not s.busy:
            return
        if time.monotonic() > deadline:
            print(f"{report.LOUD} backlog before the burst: {s}", flush=True)
            return
        time.sleep(0.5)


def run(session: Session) -> int:
    args = session.args
    product = session.start_systems(["product"])["product"]
    assert product.db_url and product.redis_url
    meter = session.meter({"product": product})
    bodies, words = session.bodies, session.words
    warm_up(product.target, bodies, words, args.warmup, args.concurrency)

    sustained = None
    if args.rate:
        rate = float(args.rate)
    else:
        session.check_alive(product)
        quiet = wait_quiet(args.quiet_wait, args.quiet_cores)
        sustained = measure(
            product.target,
            bodies,
            words,
            meter,
            args,
            offset=0,
            settle=objects_written(product.db_url),
        )
        sustained["load_before_cores"] = quiet
        rate = sustained["throughput_rps"]
        print(f"sustained: {one_line(sustained)}", flush=True)
        if rate <= 0:
            raise RuntimeError("the sustained run had no successful answer; no rate to burst at")

    burst_rate = args.burst_factor * rate
    threads = args.sender_threads or sender_threads(burst_rate, latency_s=0.5)
    target = product.target.with_headers(Prefer=None)
    sampler = DepthSampler(product.db_url, product.redis_url, interval=args.sample_interval)
    try:
        _wait_empty(sampler, 60)
        session.check_alive(product)
        print(
            f"burst: {burst_rate:.1f} req/s for {args.burst_seconds:g} s "
            f"({threads} sender threads)",
            flush=True,
        )
        before = meter.snapshot()
        origin = time.perf_counter() + LEAD_S
        sampler.start(origin)
        shots, _ = run_open_loop(
            target,
            bodies,
            rate=burst_rate,
            duration=args.burst_seconds,
            threads=threads,
            judge=judge_accepted,
            timeout=30,
            offset=args.requests,
            start_at=origin,
        )
        answered_t = sampler.now()
        sender = summarize_shots(shots, answered_t, ok_statuses=(202,))
        print(
            f"burst sent {sender['sent']}: {report.statuses_line(sender['statuses'])}; "
            f"waiting for the queue to drain (up to {args.drain_timeout:g} s)",
            flush=True,
        )
        sampler.wait_drained(answered_t, args.drain_timeout, lambda: session.check_alive(product))
        sampler.stop()
        stopped_t = sampler.now()
        cpu = CpuMeter.delta(before, meter.snapshot())
    finally:
        sampler.close()

    accepted = [s.info for s in shots if 200 <= s.status < 300 and s.info]
    end_t = max((s.sent_s for s in shots), default=0.0)
    drain = drain_time(sampler.samples, 0.0, end_t)
    done = outcomes(product.db_url, accepted)
    burst: dict[str, Any] = {
        "rate_rps": burst_rate,
        "threads": threads,
        "sender": sender,
        "accepted": len(accepted),
        "end_s": end_t,
        "last_answer_s": answered_t,
        "outcomes": done,
        "peaks": peaks(sampler.samples),
        "drain": drain,
        "timeline": depth_timeline(sampler.samples, args.timeline_step),
        "samples": [[round(s.t, 3), s.queued, s.unacked, s.unfinished] for s in sampler.samples],
        "sampler_errors": sampler.errors,
    }
    burst.update(cpu_figures(cpu, stopped_t, max(len(accepted), 1)))
    result: dict[str, Any] = {
        "scenario": "burst",
        "config": report.config(args, session.storage),
        "environment": report.environment(),
        "sustained_rps": rate,
        "sustained": sustained,
        "burst": burst,
        "verdict": verdict(sender, done, drain),
    }
    print()
    print(report.burst_report(result))
    report.write_json(args.out, result)
    return 0 if result["verdict"]["ok"] else 1
