"""Starting the two systems under test.

- baseline: scripts/baseline_app.py (`POST /recognize`: rasterise, run the model inline, write
  the PNG to object storage, answer 200), gunicorn gthread.
- product: `doodle api` + one `doodle worker`, a fresh Postgres database and Redis db (or
  embedded ones in a temporary home), the seed model imported as production.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchkit import CLIENT_KEY, REPO_ROOT
from benchkit.inputs import seed_words
from benchkit.load import Target
from benchkit.procs import doodle_command, flush_redis, run_checked, wait_ready
from db.registry import Alias
from devtools.databases import create_database
from devtools.net import free_port, port_open
from devtools.processes import Processes


@dataclass
class System:
    name: str
    target: Target  # the recognition endpoint, as the closed loop posts to it
    groups: dict[str, int]  # component name -> process group id
    db_url: str | None = None  # the product's database and Redis (burst samples them)
    redis_url: str | None = None
    # The player the product's recognitions name (its secret is in the target's headers);
    # None: a product from before server-issued ids, which takes any player_id.
    player_id: str | None = None


def start_baseline(procs: Processes, args: argparse.Namespace, storage_url: str) -> System:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs.start(
        "baseline",
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "baseline_app.py"),
            "--port",
            str(port),
            "--workers",
            str(args.baseline_workers),
            "--threads",
            str(args.baseline_threads),
            "--storage-url",
            storage_url,
        ],
        env,
    )
    took = wait_ready(procs, ["baseline"], port, "/healthz")
    print(f"baseline ready on :{port} in {took:.1f}s", flush=True)
    target = Target(
        "baseline", "127.0.0.1", port, "/recognize", {"Content-Type": "application/json"}
    )
    return System("baseline", target, {"baseline": procs.pgid("baseline")})


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    return port_open(parts.hostname or "127.0.0.1", parts.port or default_port, timeout=2)


def product_services(
    args: argparse.Namespace, home: Path, stack: contextlib.ExitStack
) -> tuple[str, str, str]:
    """(DATABASE_URL, REDIS_URL, what) for the product: a fresh database on the given servers,
    or embedded Postgres and Redis (as `make run` uses) in a temporary home."""
    mode = args.services
    if mode == "auto":
        servers_up = _reachable(args.pg_admin_url, 5432) and _reachable(args.redis_url, 6379)
        mode = "server" if servers_up else "embedded"
    if mode == "server":
        db_url = create_database(args.pg_admin_url, args.db_name, replace=True)
        flush_redis(args.redis_url)
        return db_url, args.redis_url, f"database {args.db_name}, {args.redis_url}"
    from core.settings import Settings
    from devtools.embedded import EmbeddedServices

    settings = Settings(
        home=home / "embedded",
        embedded_postgres_port=free_port(),
        embedded_redis_port=free_port(),
    )
    resolved = stack.enter_context(EmbeddedServices(settings))
    return resolved.db_url, resolved.broker_url, "embedded Postgres and Redis"


def start_product(
    procs: Processes,
    args: argparse.Namespace,
    storage_url: str,
    home: Path,
    stack: contextlib.ExitStack,
) -> System:
    db_url, redis_url, services = product_services(args, home, stack)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "STORAGE_URL": storage_url,
        "DOODLE_CLIENT_KEYS": CLIENT_KEY,
        # One key sends everything here: limits stay on (their cost counts) but never bite,
        # unless the environment says otherwise (`off` measures what they cost).
        "DOODLE_RATE_RECOGNITIONS": os.environ.get("DOODLE_RATE_RECOGNITIONS", "1000000/second"),
        "DOODLE_RATE_GUESSES": os.environ.get("DOODLE_RATE_GUESSES", "1000000/second"),
        "DOODLE_HOME": str(home),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    doodle = doodle_command(args.doodle)
    run_checked([*doodle, "db", "upgrade"], env, "doodle db upgrade")
    run_checked(
        [
            *doodle,
            "models",
            "import",
            str(REPO_ROOT / "ml/seed/quickdraw20_state_dict.pt"),
            "--classes",
            ",".join(seed_words()),
            "--alias",
            Alias.PRODUCTION,
        ],
        env,
        "doodle models import",
    )
    port = free_port()
    procs.start(
        "api",
        [
            *doodle,
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.api_workers),
            "--threads",
            str(args.api_threads),
        ],
        env,
    )
    worker_argv = [
        *doodle,
        "worker",
        "--concurrency",
        str(args.worker_concurrency),
        "--queues",
        "recognitions,maintenance",
        "--loglevel",
        "WARNING",
        *shlex.split(args.worker_args or ""),
    ]
    workers = ["worker"] + [f"worker-{i}" for i in range(2, args.worker_processes + 1)]
    for name in workers:
        procs.start(name, worker_argv, env)
    # Live guesses have a worker of their own, as `make run` and the compose stack have.
    guesser_argv = [*doodle, "worker", "--queues", "guesses", "--pool", "solo"]
    procs.start("guesser", [*guesser_argv, "--loglevel", "WARNING"], env)
    took = wait_ready(procs, ["api", *workers, "guesser"], port, "/readyz")
    extra = f", worker args {args.worker_args!r}" if args.worker_args else ""
    print(f"product ready on :{port} in {took:.1f}s ({services}{extra})", flush=True)
    headers = {
        "Content-Type": "application/json",
        "X-API-Key": CLIENT_KEY,
        "Prefer": f"wait={args.wait}",
    }
    player = bench_player(port)
    if player is not None:
        headers["X-Player-Secret"] = player[1]
    target = Target("product", "127.0.0.1", port, "/v1/recognitions", headers)
    return System(
        "product",
        target,
        {
            "api": procs.pgid("api"),
            **{name: procs.pgid(name) for name in workers},
            "guesser": procs.pgid("guesser"),
        },
        db_url=db_url,
        redis_url=redis_url,
        player_id=player[0] if player else None,
    )


BENCH_CONSENT = {"store": True, "train": True, "version": "v1"}


def bench_player(port: int) -> tuple[str, str] | None:
    """The player the bench's doodles name, as a game gets one (POST /v1/players, with the
    consent the doodles carry): (id, secret); None if the product predates that route."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            "/v1/players",
            body=json.dumps({"consent": BENCH_CONSENT}),
            headers={"Content-Type": "application/json", "X-API-Key": CLIENT_KEY},
        )
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status in (404, 405):
        return None
    if response.status != 201:
        raise SystemExit(f"POST /v1/players answered {response.status}: {data[:200]!r}")
    made = json.loads(data)
    return made["player_id"], made["player_secret"]
