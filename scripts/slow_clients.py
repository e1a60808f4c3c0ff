"""Slow clients against the product: does the API keep serving everyone else?

    .venv/bin/python scripts/slow_clients.py [--connections 200] [--duration 60] ...

Starts the product as scripts/bench.py does (`doodle api` with its default 2 processes x 16
threads, a recognitions worker, the guesser; fresh database and Redis db, or embedded ones),
then runs two phases of --duration seconds each, in one command:

1. baseline: /healthz probed every second (1 s timeout, a fresh connection each) while
   --concurrency clients post recognitions (`Prefer: wait`, closed loop);
2. slow: the same, while --connections slow connections are held from --sources (half drip
   their head one byte every --drip-seconds, half announce a Content-Length larger than the
   body they drip; one the server closes is opened again a second later).

Reports failed probes, probe and recognition latencies of both phases, and what the server
did with the slow connections (408 after the header/body timeout, 429 over the per-address
limit). Exit status 1 if a probe failed or a recognition did not succeed in the slow phase.
The API's limits come from the environment (DOODLE_API_HEADER_TIMEOUT, ...), as in production.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import REPO_ROOT
from benchkit.load import run_closed_loop
from benchkit.measure import warm_up
from benchkit.report import environment, write_json
from benchkit.session import Session
from benchkit.slow_clients import HealthProbe, SlowClients
from benchkit.summaries import summarize
from benchkit.systems import System


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Hold slow connections against the product; probe /healthz and recognise.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--connections", type=int, default=200, help="slow connections held")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of each phase")
    p.add_argument(
        "--sources",
        default="127.0.0.2",
        help="comma-separated source addresses of the slow connections (loopback aliases)",
    )
    p.add_argument("--drip-seconds", type=float, default=2.0, help="a byte every this often")
    p.add_argument("--concurrency", type=int, default=4, help="recognition clients")
    p.add_argument("--wait", type=int, default=10, help="the recognitions' Prefer: wait=N")
    p.add_argument("--warmup", type=int, default=64, help="warm-up recognitions")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "bench" / "slow-clients.json")
    g = p.add_argument_group("product (as scripts/bench.py)")
    g.add_argument("--api-workers", type=int, default=2)
    g.add_argument("--api-threads", type=int, default=16)
    g.add_argument("--worker-concurrency", type=int, default=2)
    g.add_argument("--worker-processes", type=int, default=1)
    g.add_argument("--worker-args", default="")
    g.add_argument("--doodle", default=None, help="the doodle command")
    g.add_argument("--services", choices=("auto", "server", "embedded"), default="auto")
    g.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://root@127.0.0.1:5432/test"),
    )
    g.add_argument("--db-name", default="doodle_slow_clients")
    g.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    g.add_argument("--keep-tmp", action="store_true", help="keep the logs")
    args = p.parse_args(argv)
    args.sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    if args.connections < 0 or args.duration <= 0 or args.concurrency < 1 or not args.sources:
        p.error("--connections >= 0, --duration > 0, --concurrency >= 1 and a source are needed")
    # What Session and start_product read besides.
    args.storage, args.storage_url = "folder", None
    return args


def phase(
    session: Session, product: System, args: argparse.Namespace, slow: int, offset: int
) -> dict[str, Any]:
    target = product.target
    with HealthProbe(target.host, target.port) as probe:
        clients = SlowClients(
            target.host, target.port, slow, args.sources, drip_seconds=args.drip_seconds
        )
        with clients:
            samples, elapsed = run_closed_loop(
                target,
                session.bodies,
                session.words,
                concurrency=args.concurrency,
                requests=10**9,
                duration=args.duration,
                timeout=args.wait + 20,
                offset=offset,
            )
            held_at_end = len(clients.held)
    recognitions = summarize(samples, elapsed)
    recognitions.pop("stages", None)
    return {
        "slow_connections": slow,
        "healthz": probe.summary(),
        "healthz_failures": [p.__dict__ for p in probe.failures][:20],
        "recognitions": recognitions,
        "slow": {**clients.tally.as_dict(), "held_at_end": held_at_end} if slow else None,
    }


def _ms(value: Any) -> str:
    return "-" if value is None or value != value else f"{value:.1f}"


def report(phases: dict[str, dict[str, Any]]) -> str:
    lines = [
        "phase     slow  healthz probes  failed  p50 ms  p99 ms  max ms | recognitions  req/s"
        "  p50 ms  p99 ms  errors"
    ]
    for name, ph in phases.items():
        h, r = ph["healthz"], ph["recognitions"]
        lines.append(
            f"{name:<9} {ph['slow_connections']:>4}  {h['probes']:>14}  {h['failed']:>6}  "
            f"{_ms(h['p50_ms']):>6}  {_ms(h['p99_ms']):>6}  {_ms(h['max_ms']):>6} | "
            f"{r['requests']:>12}  {r['throughput_rps']:>5.1f}  {_ms(r['p50_ms']):>6}  "
            f"{_ms(r['p99_ms']):>6}  {r['errors']:>6}"
        )
    slow = phases["slow"]["slow"]
    if slow:
        lines.append(
            f"slow connections: opened {slow['opened']} (connect errors "
            f"{slow['connect_errors']}), closed by the server {slow['closed_by_server']}, "
            f"held {_ms(slow['held_s_p50'])} s median / {_ms(slow['held_s_max'])} s max, "
            f"{slow['held_at_end']} held at the end"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        with Session(args) as session:
            product = session.start_systems(["product"])["product"]
            warm_up(product.target, session.bodies, session.words, args.warmup, args.concurrency)
            phases = {
                "baseline": phase(session, product, args, 0, offset=0),
                "slow": phase(session, product, args, args.connections, offset=1000),
            }
            session.check_alive(product)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    print()
    print(report(phases))
    limits = {
        k: os.environ[k]
        for k in (
            "DOODLE_API_HEADER_TIMEOUT",
            "DOODLE_API_BODY_TIMEOUT",
            "DOODLE_API_CONNECTIONS_PER_ADDRESS",
        )
        if k in os.environ
    }
    config = {k: (v if not isinstance(v, Path) else str(v)) for k, v in vars(args).items()}
    result = {
        "scenario": "slow_clients",
        "config": config,
        "api_limits_from_env": limits,
        "environment": environment(),
        "phases": phases,
    }
    write_json(args.out, result)
    slow = phases["slow"]
    ok = slow["healthz"]["failed"] == 0 and slow["recognitions"]["errors"] == 0
    if not ok:
        print(json.dumps(slow["healthz_failures"]), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
