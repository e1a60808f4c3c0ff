"""Scenario `compare`: the product against the seed's synchronous baseline, same drawings,
measurements alternating between the systems `--repeats` times."""

from __future__ import annotations

from typing import Any

from benchkit import report
from benchkit.cpu import wait_quiet
from benchkit.measure import measure, objects_written, one_line, warm_up
from benchkit.session import Session
from benchkit.summaries import aggregate, ratios


def run(session: Session) -> int:
    args = session.args
    systems = session.start_systems(args.systems)
    meter = session.meter(systems)
    bodies, words = session.bodies, session.words
    for system in systems.values():
        warm_up(system.target, bodies, words, args.warmup, args.concurrency)
    runs: list[dict[str, Any]] = []
    order = list(systems)
    for repeat in range(args.repeats):
        for name in order if repeat % 2 == 0 else list(reversed(order)):
            session.check_alive(systems[name])
            quiet = wait_quiet(args.quiet_wait, args.quiet_cores)
            # Same drawings for both systems within a repeat; another slice each repeat.
            system = systems[name]
            summary = measure(
                system.target,
                bodies,
                words,
                meter,
                args,
                offset=repeat * args.requests,
                settle=objects_written(system.db_url) if system.db_url else None,
            )
            summary.update(system=name, repeat=repeat, load_before_cores=quiet)
            runs.append(summary)
            print(
                f"run {repeat + 1}/{args.repeats} {name}: {one_line(summary)} "
                f"(before: {quiet:.2f})",
                flush=True,
            )
    medians = {name: aggregate([r for r in runs if r["system"] == name]) for name in systems}
    result: dict[str, Any] = {
        "scenario": "compare",
        "config": report.config(args, session.storage),
        "environment": report.environment(),
        "median": medians,
        "runs": runs,
    }
    if "baseline" in medians and "product" in medians:
        result["ratio"] = ratios(medians["product"], medians["baseline"])
    print()
    print(report.compare_report(result))
    report.write_json(args.out, result)
    return 0
