"""Does a flywheel cycle slow recognitions down? Recognition latency on `doodle run` (what
`make run` runs) without a cycle, and while a cycle trains, on the same stack.

    .venv/bin/python scripts/serving_during_training.py [--modes niced,nice-only,unniced] \\
        [--concurrency 4] [--duration 15] [--services servers|embedded]

For each mode, a fresh product (scripts/benchkit/product_learning_stack.py: a new database,
a flushed Redis db, the seed model and the shipped sample imported by `doodle run`):

1. warm-up, then --duration seconds of closed-loop recognitions (`Prefer: wait`) at
   --concurrency: "idle before";
2. a cycle started as an operator starts one (`doodle flows run flywheel`, beside the running
   product, with its environment, in a process group of its own). While its stage is
   `finetune` (GET /v1/admin/cycles), for up to 2 x --duration seconds, --slice-second
   slices of the same load alternate between training paused (SIGSTOP to the cycle's group)
   and training running: "paused" and "training", measured under the same background load
   (other work on a shared machine comes and goes; idle windows minutes apart differed 3x
   here). The ratios compare these two;
3. the same load again after the cycle: "idle after".

Modes: `niced` is the product as configured (the flow process yields the CPU,
flows.context.yield_cpu_to_serving: niceness 10, SCHED_IDLE, one torch thread; and its
training steps aside while the machine serves, flows.throttle); `duty10` steps aside more
(10 %); `unthrottled` leaves the
throttle out, `nice-only` SCHED_IDLE too; `unniced` is as before (niceness 0, torch's own
threads, no throttle). Prints a table and writes JSON (--out). The target (issue 18):
recognition p99 while training within 20 % of without.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import CLIENT_KEY, REPO_ROOT
from benchkit.inputs import load_drawings, seed_words
from benchkit.load import Target, run_closed_loop
from benchkit.product_learning_stack import ADMIN_TOKEN, Stack, last_json
from benchkit.stats import percentiles
from benchkit.summaries import Sample

MODES = {
    "niced": {},  # the product's defaults
    "duty10": {"DOODLE_FLOW_TRAIN_DUTY": "0.1"},
    "unthrottled": {"DOODLE_FLOW_TRAIN_DUTY": "1"},
    "nice-only": {"DOODLE_FLOW_SCHED_IDLE": "false", "DOODLE_FLOW_TRAIN_DUTY": "1"},
    "unniced": {
        "DOODLE_FLOW_NICE": "0",
        "DOODLE_FLOW_SCHED_IDLE": "false",
        "DOODLE_FLOW_TORCH_THREADS": "64",
        "DOODLE_FLOW_TRAIN_DUTY": "1",
    },
}
WARMUP_SECONDS = 3.0
CYCLE_TIMEOUT = 900.0


def _bodies(limit: int) -> tuple[list[bytes], list[str]]:
    """Recognitions of the seed's words, with no player: nothing a cycle would train on."""
    drawings = load_drawings(seed_words())[:limit]
    bodies = [json.dumps({"drawing": d, "word": w}).encode() for w, d in drawings]
    return bodies, [w for w, _ in drawings]


def _load(
    target: Target, bodies: list[bytes], words: list[str], concurrency: int, seconds: float
) -> list[Sample]:
    samples, _ = run_closed_loop(
        target, bodies, words, concurrency=concurrency, requests=0, duration=seconds
    )
    return samples


def _figures(samples: list[Sample], seconds: float) -> dict[str, Any]:
    ok = [s.latency_ms for s in samples if s.ok]
    figures = {k: round(v, 1) for k, v in percentiles(ok, (50, 90, 99)).items()} if ok else {}
    return {
        "seconds": round(seconds, 1),
        "answers": len(samples),
        "errors": len(samples) - len(ok),
        "per_second": round(len(ok) / seconds, 1) if seconds else 0.0,
        **figures,
    }


def _stage(stack: Stack) -> tuple[str | None, str | None]:
    """(status, stage) of the newest cycle."""
    request = urllib.request.Request(
        f"{stack.base_url}/v1/admin/cycles?limit=1",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        cycles = json.load(response)["cycles"]
    return (cycles[0]["status"], cycles[0]["stage"]) if cycles else (None, None)


TRAINING = ("running", "finetune")


def _one_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    bodies, words = _bodies(args.drawings)
    c = args.concurrency
    with Stack(args.services, redis_url=args.redis_url) as stack:
        print(f"[{mode}] product ready in {stack.ready_seconds}s", flush=True)
        headers = {"X-API-Key": CLIENT_KEY, "Prefer": "wait=10", "Content-Type": "application/json"}
        target = Target("product", "127.0.0.1", int(stack.env["PORT"]), "/v1/recognitions", headers)
        _load(target, bodies, words, c, WARMUP_SECONDS)
        before = _figures(_load(target, bodies, words, c, args.duration), args.duration)
        print(f"[{mode}] idle before: {before}", flush=True)

        # The cycle as an operator starts it, in a process group of its own, so that it can
        # be paused: slices with training paused and running alternate, under the same
        # background load (a shared machine's other work comes and goes).
        name = "flows-run-flywheel"
        cycle = stack.procs.start(
            name, [*stack.doodle, "flows", "run", "flywheel"], {**stack.env, **MODES[mode]}
        )
        while cycle.poll() is None and _stage(stack) != TRAINING:
            time.sleep(0.2)
        slices: dict[str, list[Sample]] = {"paused": [], "training": []}
        seconds = dict.fromkeys(slices, 0.0)
        deadline = time.monotonic() + 2 * args.duration
        k = 0
        while cycle.poll() is None and time.monotonic() < deadline and _stage(stack) == TRAINING:
            phase = "paused" if k % 2 == 0 else "training"
            if phase == "paused":
                os.killpg(cycle.pid, signal.SIGSTOP)
            try:
                slices[phase] += _load(target, bodies, words, c, args.slice)
                seconds[phase] += args.slice
            finally:
                os.killpg(cycle.pid, signal.SIGCONT)
            k += 1
        if cycle.wait(CYCLE_TIMEOUT) != 0:
            raise RuntimeError(f"the cycle failed:\n{stack.procs.log_tail(name)}")
        log = (stack.tmp / f"{name}.log").read_text(errors="replace")
        headline = last_json(log)
        after = _figures(_load(target, bodies, words, c, args.duration), args.duration)
        print(f"[{mode}] idle after: {after}", flush=True)
    paused = _figures(slices["paused"], seconds["paused"])
    training = _figures(slices["training"], seconds["training"])
    print(f"[{mode}] training paused: {paused}\n[{mode}] training: {training}", flush=True)
    return {
        "mode": mode,
        "env": MODES[mode],
        "idle_before": before,
        "paused": paused,
        "training": training,
        "idle_after": after,
        "p50_ratio": round(training["p50"] / paused["p50"], 2),
        "p99_ratio": round(training["p99"] / paused["p99"], 2),
        "p99_ratio_to_idle": round(training["p99"] / ((before["p99"] + after["p99"]) / 2), 2),
        "cycle": {k: headline.get(k) for k in ("promoted", "training_examples", "timings")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="niced,nice-only,unniced")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--slice", type=float, default=2.0, help="seconds of one paired slice")
    parser.add_argument("--drawings", type=int, default=2000)
    parser.add_argument("--services", choices=["servers", "embedded"], default="servers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "bench-serving-during-training.json"
    )
    args = parser.parse_args()
    results = [_one_mode(mode.strip(), args) for mode in args.modes.split(",") if mode.strip()]
    print(f"\n{'mode':9} {'phase':12} {'p50 ms':>8} {'p99 ms':>8} {'per s':>7} {'errors':>6}")
    for r in results:
        for phase in ("idle_before", "paused", "training", "idle_after"):
            f = r[phase]
            row = f"{f['p50']:8} {f['p99']:8} {f['per_second']:7} {f['errors']:6}"
            print(f"{r['mode']:9} {phase:12} {row}")
        print(f"{r['mode']:9} {'ratio':12} {r['p50_ratio']:8} {r['p99_ratio']:8}")
    args.out.write_text(
        json.dumps(
            {
                "args": vars(args) | {"out": str(args.out)},
                "results": results,
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
