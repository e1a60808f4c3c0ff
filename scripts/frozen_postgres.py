"""A frozen Postgres under steady load: are the API's answers bounded, and is nothing lost?

    .venv/bin/python scripts/frozen_postgres.py [--freeze 20] [--clients 4] [--json out.json]

Starts the product (`doodle api` 2 processes x 8 threads, a worker, the beat) on a private
PostgreSQL (devtools.postgres_freeze; never the machine's), Redis from REDIS_URL (its db is
flushed before and after) or an embedded one, objects in a temporary folder. --clients
threads post recognitions back to back (no Prefer: wait, so 202 is the normal answer), each
doodle with an Idempotency-Key of its own that its retries (after a 503) send again;
after --before seconds every Postgres process is SIGSTOPped for --freeze seconds, then
SIGCONTed, and the load goes on for --after seconds.

Reports, by phase (before, frozen, after), the answers' statuses and times (max, p50, p99),
and at the end whether every accepted doodle (202) ended done, and how many rows no client
was told about: a 503 whose INSERT waited in the frozen server and ran at the thaw would be
one, a duplicate, unless the retry's Idempotency-Key answers with it (0 expected). Exit
status 1 on a 500, an answer during the freeze slower than --bound seconds, an accepted
doodle not done within --finish seconds, or a row no client was told about.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from sqlalchemy import func, select

from core.settings import Settings
from db.models import Recognition, RecognitionStatus
from db.registry import Alias
from db.session import make_engine, make_session_factory
from devtools.net import free_port, wait_http
from devtools.postgres_freeze import PrivatePostgres, private_postgres
from devtools.processes import Processes
from devtools.redis_server import EmbeddedRedis
from ml.network import seed_classes, seed_weights_path
from services.connections import Connections
from services.models import import_model

CLIENT_KEY = "frozen-bench-key"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "quickdraw"


@dataclass
class Answer:
    started: float  # seconds since the load began
    seconds: float
    status: int  # 0: no answer (the client's own 30 s timeout, or a refused connection)
    recognition_id: str | None = None


@dataclass
class Load:
    url: str
    drawing: list
    clients: int
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    origin: float = field(default_factory=time.monotonic)

    def _client(self) -> None:
        """Posts doodles back to back, as a careful game would: each with an Idempotency-Key
        of its own, sent again with every retry of that doodle (after a 503 or no answer), so
        a row committed for a client that was told 503 is answered to its retry, not
        recorded twice."""
        session = requests.Session()
        key: str | None = None
        while not self.stop.is_set():
            key = key or uuid.uuid4().hex
            started = time.monotonic()
            status, rid = 0, None
            try:
                r = session.post(
                    self.url,
                    json={"drawing": self.drawing},
                    headers={"X-API-Key": CLIENT_KEY, "Idempotency-Key": key},
                    timeout=30,
                )
                status = r.status_code
                if status in (200, 202):
                    rid = r.json()["id"]
                    key = None  # this doodle is accepted: the next one gets a new key
            except requests.RequestException:
                session = requests.Session()
            end = time.monotonic()
            self.answers.append(Answer(started - self.origin, end - started, status, rid))
            time.sleep(0.02)

    @contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=40)

    def now(self) -> float:
        return time.monotonic() - self.origin


def _phase_figures(answers: list[Answer]) -> dict[str, Any]:
    if not answers:
        return {"answers": 0}
    times = sorted(a.seconds for a in answers)
    return {
        "answers": len(answers),
        "statuses": dict(sorted(Counter(str(a.status) for a in answers).items())),
        "max_s": round(times[-1], 3),
        "p50_s": round(statistics.median(times), 3),
        "p99_s": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
    }


def _a_drawing() -> list:
    path = next(iter(sorted(SAMPLE.rglob("*.ndjson"))), None)
    if path is not None:
        return json.loads(path.read_text().splitlines()[0])["drawing"]
    return [[[10, 80, 160, 240], [10, 120, 40, 200]]]


def _import_seed(settings: Settings) -> None:
    connections = Connections(settings)
    try:
        import_model(
            connections.sessions,
            connections.storage,
            seed_weights_path().read_bytes(),
            seed_classes(),
            alias=Alias.PRODUCTION,
            source="seed",
            actor="bench:frozen-postgres",
        )
    finally:
        connections.close()


def _env(settings: Settings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.db_url,
        "REDIS_URL": settings.broker_url,
        "STORAGE_URL": settings.object_store_url,
        "DOODLE_CLIENT_KEYS": CLIENT_KEY,
        "DOODLE_HOME": str(settings.home),
        "PORT": str(port),
        "DOODLE_RATE_RECOGNITIONS": "100000/second",
        # Rows recorded at the thaw for a client told 503 are sent by the sweeper this soon.
        "DOODLE_SWEEPER_STALE_SECONDS": "10",
    }


def _wait_all_done(pg: PrivatePostgres, accepted: set[str], seconds: float) -> dict[str, Any]:
    engine = make_engine(pg.url)
    sessions = make_session_factory(engine)
    deadline = time.monotonic() + seconds
    try:
        while True:
            with sessions() as s:
                rows = {
                    str(rid): status
                    for rid, status in s.execute(select(Recognition.id, Recognition.status))
                }
                by_status = dict(
                    s.execute(
                        select(Recognition.status, func.count()).group_by(Recognition.status)
                    ).all()
                )
            missing = accepted - set(rows)
            not_done = [i for i in accepted & set(rows) if rows[i] != RecognitionStatus.done]
            orphans = set(rows) - accepted
            orphans_not_done = [i for i in orphans if rows[i] != RecognitionStatus.done]
            finished = not missing and not not_done and not orphans_not_done
            if finished or time.monotonic() > deadline:
                return {
                    "accepted": len(accepted),
                    "accepted_done": len(accepted) - len(missing) - len(not_done),
                    "accepted_missing": len(missing),
                    "accepted_not_done": len(not_done),
                    "rows_no_client_was_told_of": len(orphans),
                    "those_not_done": len(orphans_not_done),
                    "rows_by_status": {k.value: v for k, v in by_status.items()},
                    "all_done": finished,
                }
            time.sleep(1)
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="doodle-frozen-bench-"))
    os.chmod(root, 0o755)
    redis_server = None
    (root / "logs").mkdir()
    procs = Processes(root / "logs")
    try:
        redis_url = args.redis_url
        if not redis_url:
            redis_server = EmbeddedRedis(root / "redis", free_port())
            redis_url, _ = redis_server.up()
        _flush(redis_url)
        with private_postgres() as pg:
            settings = Settings(
                home=root / "home",
                database_url=pg.url,
                redis_url=redis_url,
                client_keys=(CLIENT_KEY,),
            )
            settings.home.mkdir(parents=True)
            _import_seed(settings)
            port = free_port()
            env = _env(settings, port)
            doodle = [sys.executable, "-m", "cli.main"]
            procs.start("worker", [*doodle, "worker", "--concurrency", "2"], env)
            procs.start("beat", [*doodle, "beat"], env)
            procs.start(
                "api",
                [*doodle, "api", "--host", "127.0.0.1", "--workers", "2", "--threads", "8"],
                env,
            )
            base = f"http://127.0.0.1:{port}"
            last = wait_http(f"{base}/readyz", 120, poll=0.5)
            if last is not None:
                raise RuntimeError(f"not ready: {last}\n{procs.log_tail('api', 40)}")

            load = Load(f"{base}/v1/recognitions", _a_drawing(), args.clients)
            with load.running():
                time.sleep(args.before)
                freeze_start = load.now()
                with pg.frozen():
                    time.sleep(args.freeze)
                freeze_end = load.now()
                time.sleep(args.after)
            answers = list(load.answers)
            phases = {
                "before": [a for a in answers if a.started < freeze_start],
                "frozen": [a for a in answers if freeze_start <= a.started < freeze_end],
                "after": [a for a in answers if a.started >= freeze_end],
            }
            first_ok = next(
                (a.started + a.seconds - freeze_end for a in phases["after"] if a.status == 202),
                None,
            )
            accepted = {a.recognition_id for a in answers if a.recognition_id}
            outcome = _wait_all_done(pg, accepted, args.finish)
            procs.stop(grace=15)
            return {
                "freeze_s": args.freeze,
                "clients": args.clients,
                "phases": {name: _phase_figures(p) for name, p in phases.items()},
                "max_answer_s_while_frozen": round(
                    max((a.seconds for a in phases["frozen"]), default=0.0), 3
                ),
                "status_500": sum(a.status == 500 for a in answers),
                "no_answer": sum(a.status == 0 for a in answers),
                "first_202_after_thaw_s": None if first_ok is None else round(first_ok, 3),
                "outcome": outcome,
            }
    finally:
        procs.stop(grace=15)
        if args.redis_url:
            _flush(args.redis_url)
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--freeze", type=float, default=20.0, help="seconds Postgres is stopped")
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--bound", type=float, default=3.0, help="slowest answer allowed, frozen")
    parser.add_argument("--finish", type=float, default=120.0)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL"), help="flushed; default: embedded"
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    failed = (
        report["status_500"] > 0
        or report["max_answer_s_while_frozen"] > args.bound
        or not report["outcome"]["all_done"]
        or report["outcome"]["rows_no_client_was_told_of"] > 0
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
