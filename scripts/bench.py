"""Benchmark the product (API -> Celery -> worker); `make bench` runs this.

    .venv/bin/python scripts/bench.py [--scenario compare|burst|guesses] [--storage folder|s3] ...

Scenarios (the pieces live in scripts/benchkit/, one job a module):

- compare (default): the product against the seed's synchronous design (scripts/baseline_app.py)
  in the same run, on the same drawings; closed loop at --concurrency, runs alternating between
  the systems --repeats times; throughput, p50/p90/p99, errors, top-1, CPU ms per answer per
  component (api, worker, baseline, storage, postgres, redis, loadgen).
- burst (product only): the sustained rate R (closed loop, or --rate), then POST without
  `Prefer: wait` at --burst-factor x R for --burst-seconds, open loop; queue depth over time,
  drain time, every accepted doodle answered, no 5xx. Exit status 1 if a check fails.
- guesses (product only): recognitions alone, then with POST /v1/guesses at --guess-rate
  beside them; both ways' recognition figures and the guesses' p50/p90/p99 and statuses.

The product gets a fresh database on the Postgres server (--pg-admin-url) and a flushed Redis db
(--redis-url), or embedded ones (--services embedded); object storage is a temporary folder, or
moto's S3 server over HTTP (--storage s3), or --storage-url. The load generator runs on the same
machine and its CPU is counted as `loadgen`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import REPO_ROOT, burst, compare, guesses
from benchkit.session import Session

SCENARIOS = {"compare": compare.run, "burst": burst.run, "guesses": guesses.run}
DEFAULT_OUT = {
    "compare": "latest.json",
    "burst": "latest-burst.json",
    "guesses": "latest-guesses.json",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark the product (and the seed's synchronous baseline).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--scenario", choices=tuple(SCENARIOS), default="compare")
    p.add_argument("--concurrency", type=int, default=16, help="closed-loop client threads")
    p.add_argument("--requests", type=int, default=1000, help="requests per closed-loop run")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds a closed-loop run (instead of --requests); guesses: seconds a run "
        f"(default {guesses.DEFAULT_DURATION_S:g})",
    )
    p.add_argument("--repeats", type=int, default=3, help="runs per system / mode, alternating")
    p.add_argument("--warmup", type=int, default=64, help="warm-up requests per system")
    p.add_argument(
        "--out", type=Path, default=None, help="JSON result (default var/bench/latest*.json)"
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each run, wait up to this many seconds for the machine to be quiet (0: no)",
    )
    p.add_argument(
        "--quiet-cores", type=float, default=0.3, help="'quiet': fewer cores busy than this"
    )
    p.add_argument("--systems", default="baseline,product", help="compare: which systems")
    p.add_argument("--wait", type=int, default=10, help="the product's Prefer: wait=N")
    g = p.add_argument_group("burst")
    g.add_argument("--rate", type=float, default=None, help="sustained rate (default: measure)")
    g.add_argument("--burst-factor", type=float, default=10.0, help="burst rate / sustained rate")
    g.add_argument("--burst-seconds", type=float, default=5.0)
    g.add_argument("--drain-timeout", type=float, default=300.0, help="seconds after the burst")
    g.add_argument("--sample-interval", type=float, default=0.1, help="queue depth sampling")
    g.add_argument("--timeline-step", type=float, default=0.5, help="reported depth timeline")
    g = p.add_argument_group("guesses")
    g.add_argument("--guess-rate", type=float, default=50.0, help="guesses a second")
    g.add_argument("--guess-path", default=guesses.GUESS_PATH, help="the live guesses endpoint")
    p.add_argument(
        "--sender-threads", type=int, default=0, help="open-loop sender threads (0: from the rate)"
    )
    g = p.add_argument_group("processes")
    g.add_argument("--api-workers", type=int, default=2)
    g.add_argument("--api-threads", type=int, default=16)
    g.add_argument("--worker-concurrency", type=int, default=2)
    g.add_argument(
        "--worker-processes", type=int, default=1, help="`doodle worker` processes (recognitions)"
    )
    g.add_argument(
        "--worker-args",
        default="",
        help="extra arguments for `doodle worker` (one string, shell-split)",
    )
    g.add_argument("--baseline-workers", type=int, default=2)
    g.add_argument("--baseline-threads", type=int, default=8)
    g.add_argument(
        "--doodle", default=None, help="the doodle command (default: the one beside this Python)"
    )
    g = p.add_argument_group("services")
    g.add_argument(
        "--storage",
        choices=("folder", "s3"),
        default="folder",
        help="object storage of both systems: a temporary local folder, or moto's S3 server "
        "over HTTP started by the bench",
    )
    g.add_argument(
        "--storage-url", default=None, help="object storage of both systems (instead of --storage)"
    )
    g.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://root@127.0.0.1:5432/test"),
        help="a database on the Postgres server to create the benchmark database from",
    )
    g.add_argument(
        "--services",
        choices=("auto", "server", "embedded"),
        default="auto",
        help="the product's Postgres and Redis: the servers of --pg-admin-url / --redis-url, "
        "or embedded ones in a temporary folder; auto: the servers if they answer",
    )
    g.add_argument("--db-name", default="doodle_bench", help="dropped and recreated each run")
    g.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="flushed each run")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - {"baseline", "product"}
    if unknown or not args.systems:
        p.error(f"--systems takes baseline and/or product, got {sorted(unknown)}")
    if args.scenario != "compare":
        args.systems = ["product"]
    if args.concurrency < 1 or args.requests < 1 or args.repeats < 1:
        p.error("--concurrency, --requests and --repeats must be at least 1")
    if args.storage_url and args.storage != "folder":
        p.error("give --storage s3 or --storage-url, not both")
    positive = ("burst_factor", "burst_seconds", "sample_interval", "timeline_step", "guess_rate")
    for name in positive:
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if (args.rate is not None and args.rate <= 0) or (
        args.duration is not None and args.duration <= 0
    ):
        p.error("--rate and --duration must be positive")
    if args.out is None:
        args.out = REPO_ROOT / "var" / "bench" / DEFAULT_OUT[args.scenario]
    return args


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    try:
        with Session(args) as session:
            try:
                return SCENARIOS[args.scenario](session)
            except RuntimeError as exc:
                print(f"\nbenchmark failed: {exc}", file=sys.stderr)
                session.keep_tmp = True  # keep the servers' logs
                return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
