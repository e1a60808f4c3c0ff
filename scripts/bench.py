"""Benchmark: the product (API -> Celery -> worker) against the seed's synchronous design.

One command measures both systems in the same run, on the same drawings:

    .venv/bin/python scripts/bench.py --requests 600 --repeats 3

- baseline: scripts/baseline_app.py (`POST /recognize`: rasterise, run the model inline, write
  the PNG to object storage, answer 200), gunicorn gthread, `--baseline-workers` x
  `--baseline-threads`.
- product: `doodle api` (`--api-workers` x `--api-threads`) + one `doodle worker`
  (`--worker-concurrency`), a fresh Postgres database, Redis db 14, the same object storage;
  requests are `POST /v1/recognitions` with `Prefer: wait=10` and consent store=true, so every
  request is answered only once the worker has recognised it and stored strokes + PNG.

The load is closed-loop: `--concurrency` client threads (one keep-alive http.client connection
each) post real Quick, Draw! drawings of the seed's 20 words, in the same order for both
systems, until `--requests` answers (or `--duration` seconds). Measurements alternate between
the systems `--repeats` times; the report gives per-run figures and their medians:
throughput (successful answers a second), latency p50/p90/p99 over every request (errors
included), errors, top-1 accuracy against the prompt word, and CPU seconds each component
used. The load generator runs on the same machine as the servers and takes CPU from them.

The pure helpers (`percentile`, `median`, `summarize`, `aggregate`, `ratios`) are unit-tested in
tests/unit/test_bench_stats.py.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENT_KEY = "bench-client-key"

# --------------------------------------------------------------------------- pure helpers


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between ranks (numpy's default).

    NaN for no values.
    """
    data = sorted(float(v) for v in values)
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in 0..100, got {p}")
    if not data:
        return math.nan
    rank = (len(data) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    """The median of the values that are not NaN; NaN if there are none."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return percentile(kept, 50.0)


@dataclass(frozen=True)
class Sample:
    """One request: how long it took, whether it succeeded and whether the guess was right."""

    latency_ms: float
    ok: bool
    correct: bool = False
    error: str | None = None
    timings: Mapping[str, float] | None = None  # the product's own per-stage timings


def summarize(samples: Sequence[Sample], elapsed_s: float) -> dict[str, Any]:
    """Figures of one measurement.

    Throughput counts successful answers per second of wall time; latency percentiles are over
    every request, errors included (a request that timed out is not left out of p99); accuracy
    is over successful answers.
    """
    if elapsed_s <= 0:
        raise ValueError("elapsed time must be positive")
    latencies = [s.latency_ms for s in samples]
    ok = [s for s in samples if s.ok]
    errors: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            kind = s.error or "error"
            errors[kind] = errors.get(kind, 0) + 1
    out: dict[str, Any] = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "error_kinds": errors,
        "elapsed_s": elapsed_s,
        "throughput_rps": len(ok) / elapsed_s,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else math.nan,
        "mean_ms": sum(latencies) / len(latencies) if latencies else math.nan,
        "accuracy": sum(s.correct for s in ok) / len(ok) if ok else math.nan,
    }
    stages: dict[str, list[float]] = {}
    for s in ok:
        for name, value in (s.timings or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                stages.setdefault(name, []).append(float(value))
    if stages:
        out["stage_ms"] = {
            name: {"p50": percentile(v, 50), "p90": percentile(v, 90), "p99": percentile(v, 99)}
            for name, v in sorted(stages.items())
        }
    return out


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians, key by key, of the numeric figures of several runs (nested dicts included).

    A key missing from some runs is the median of the runs that have it.
    """
    keys: list[str] = []
    for run in runs:
        for key in run:
            if key not in keys:
                keys.append(key)
    out: dict[str, Any] = {}
    for key in keys:
        present = [run[key] for run in runs if key in run]
        if present and all(_numeric(v) for v in present):
            out[key] = median(present)
        elif present and all(isinstance(v, Mapping) for v in present):
            out[key] = aggregate(present)
    return out


def ratios(product: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float]:
    """product / baseline for throughput and latencies (>1 throughput is better, <1 p99 is)."""
    out = {}
    for key, name in (
        ("throughput_rps", "throughput"),
        ("p50_ms", "p50"),
        ("p90_ms", "p90"),
        ("p99_ms", "p99"),
    ):
        p, b = product.get(key), baseline.get(key)
        out[name] = p / b if _numeric(p) and _numeric(b) and b else math.nan
    return out


def _fmt(value: Any, digits: int = 1) -> str:
    if not _numeric(value) or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def format_table(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """A plain-text table of (name, summary) rows."""
    header = ("", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "top-1", "n")
    lines = [header]
    for name, s in rows:
        acc = s.get("accuracy")
        lines.append(
            (
                name,
                _fmt(s.get("throughput_rps")),
                _fmt(s.get("p50_ms")),
                _fmt(s.get("p90_ms")),
                _fmt(s.get("p99_ms")),
                _fmt(s.get("errors"), 0),
                f"{acc * 100:.1f}%" if _numeric(acc) and not math.isnan(acc) else "-",
                _fmt(s.get("requests"), 0),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    )


# --------------------------------------------------------------------------- inputs


def shared_data_dir() -> Path:
    return Path(os.environ.get("DOODLE_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def seed_words() -> list[str]:
    return [str(w) for w in json.loads((REPO_ROOT / "ml" / "seed" / "classes.json").read_text())]


def load_drawings(words: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """(word, simplified strokes) of every sample drawing of the words, interleaved by word."""
    folder = shared_data_dir() / "quickdraw" / "simplified"
    per_word = []
    for word in words:
        path = folder / f"{word}.ndjson"
        if not path.is_file():
            raise SystemExit(f"missing {path}; set DOODLE_SHARED_DATA to the shared data folder")
        with path.open(encoding="utf-8") as f:
            per_word.append([(word, json.loads(line)["drawing"]) for line in f if line.strip()])
    # Round-robin over the words, so any prefix of the sequence mixes every word.
    out = []
    for group in itertools.zip_longest(*per_word):
        out.extend(item for item in group if item is not None)
    return out


def request_bodies(drawings: Sequence[tuple[str, list[Any]]], players: int = 100) -> list[bytes]:
    """The same JSON body for both systems (the baseline ignores what it does not need)."""
    return [
        json.dumps(
            {
                "drawing": drawing,
                "word": word,
                "player_id": f"bench-player-{i % players}",
                "consent": {"store": True, "train": True, "version": "v1"},
            },
            separators=(",", ":"),
        ).encode()
        for i, (word, drawing) in enumerate(drawings)
    ]


# --------------------------------------------------------------------------- load generator


@dataclass
class Target:
    name: str
    host: str
    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def _post_once(conn: http.client.HTTPConnection, target: Target, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", target.path, body=body, headers=target.headers)
    response = conn.getresponse()
    return response.status, response.read()


def _judge(status: int, payload: bytes, word: str) -> Sample:
    """A Sample without latency (filled by the caller) from one HTTP answer."""
    if status != 200:
        return Sample(0.0, False, error=f"http_{status}")
    try:
        body = json.loads(payload)
        if body.get("status") != "done":
            return Sample(0.0, False, error=f"status_{body.get('status')}")
        label = body["prediction"]["label"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return Sample(0.0, False, error="bad_body")
    timings = body.get("timings") if isinstance(body.get("timings"), dict) else None
    return Sample(0.0, True, correct=label == word, timings=timings)


def run_load(
    target: Target,
    bodies: Sequence[bytes],
    words: Sequence[str],
    *,
    concurrency: int,
    requests: int,
    duration: float | None = None,
    timeout: float = 30.0,
    offset: int = 0,
) -> tuple[list[Sample], float]:
    """Closed loop: `concurrency` threads post bodies[offset + i] until `requests` answers (or
    `duration` seconds). Returns the samples and the wall time from first send to last answer."""
    counter = itertools.count()
    samples: list[Sample] = []
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration if duration else None

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        local: list[Sample] = []
        try:
            while True:
                i = next(counter)
                if deadline is None and i >= requests:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                k = (offset + i) % len(bodies)
                t0 = time.perf_counter()
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
                    status, payload = _post_once(conn, target, bodies[k])
                    judged = _judge(status, payload, words[k])
                except (OSError, http.client.HTTPException) as exc:
                    judged = Sample(0.0, False, error=type(exc).__name__)
                    with contextlib.suppress(Exception):
                        conn.close()  # type: ignore[union-attr]
                    conn = None
                latency = (time.perf_counter() - t0) * 1000.0
                local.append(
                    Sample(latency, judged.ok, judged.correct, judged.error, judged.timings)
                )
        finally:
            if conn is not None:
                conn.close()
            with lock:
                samples.extend(local)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples, time.perf_counter() - start


# --------------------------------------------------------------------------- CPU accounting

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stats() -> list[tuple[int, str, int, float]]:
    """(pid, comm, pgrp, cpu seconds) of every process we can read."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
        pgrp = int(fields[2])
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        out.append((int(entry.name), comm, pgrp, cpu))
    return out


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU seconds used by process groups (our servers), Postgres, Redis and this process.

    Processes that exit during a measurement are missed (none should). Postgres and Redis are
    the machine's shared servers: other users' load counts too.
    """

    def __init__(self, groups: Mapping[str, int]) -> None:
        self.groups = dict(groups)

    def snapshot(self) -> dict[str, float]:
        totals = dict.fromkeys(self.groups, 0.0)
        totals["postgres"] = totals["redis"] = 0.0
        by_pgrp = {pgid: name for name, pgid in self.groups.items()}
        for _pid, comm, pgrp, cpu in _proc_stats():
            if pgrp in by_pgrp:
                totals[by_pgrp[pgrp]] += cpu
            elif comm == "postgres":
                totals["postgres"] += cpu
            elif comm.startswith("redis-server"):
                totals["redis"] += cpu
        t = os.times()
        totals["loadgen"] = t.user + t.system
        busy, total = _machine_cpu()
        totals["_machine_busy"], totals["_machine_total"] = busy / _TICK, total / _TICK
        return totals

    @staticmethod
    def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
        """CPU seconds per component, plus `_machine_busy`: the whole machine's (all cores)."""
        return {k: after[k] - before.get(k, 0.0) for k in after if k != "_machine_total"}


def machine_busy_cores(interval: float = 1.0) -> float:
    """How many cores the whole machine keeps busy, measured over `interval` seconds."""
    b0, _ = _machine_cpu()
    time.sleep(interval)
    b1, _ = _machine_cpu()
    return (b1 - b0) / _TICK / interval


def wait_quiet(max_wait: float, threshold: float) -> float:
    """Wait (up to max_wait s) until the machine uses under `threshold` cores; the last load."""
    deadline = time.monotonic() + max_wait
    load = machine_busy_cores()
    while load >= threshold and time.monotonic() < deadline:
        load = machine_busy_cores()
    return load


# --------------------------------------------------------------------------- processes


class Processes:
    """Subprocesses in their own sessions; `stop()` ends each process group we started."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {proc.returncode}; its log ends:\n{self.log_tail(name)}"
            )

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            # Also the group's leftovers (e.g. Celery pool children) if the leader is gone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    procs: Processes, names: Sequence[str], port: int, path: str, timeout: float = 180.0
) -> float:
    """Poll GET path until 200; seconds it took. Fails early if a process died."""
    start = time.monotonic()
    last = ""
    while time.monotonic() - start < timeout:
        for name in names:
            procs.check_alive(name)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return time.monotonic() - start
            last = f"{response.status} {body[:300]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise RuntimeError(f"{names[0]} not ready after {timeout:.0f}s on {path}: {last}")


def _run_checked(
    argv: Sequence[str], env: Mapping[str, str], what: str, timeout: float = 300
) -> str:
    result = subprocess.run(
        list(argv), env=dict(env), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create database `name` on the server of admin_url; its URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad database name {name!r}")
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        _run_checked(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], os.environ, sql)
    return _with_database(admin_url, name)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def doodle_command(given: str | None = None) -> list[str]:
    if given:
        return shlex.split(given)
    exe = Path(sys.executable).parent / "doodle"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


# --------------------------------------------------------------------------- the benchmark


@dataclass
class System:
    name: str
    target: Target
    groups: dict[str, int]  # component name -> process group id


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
    return System("baseline", target, {"baseline": procs.procs["baseline"].pid})


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


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
        db_url = fresh_database(args.pg_admin_url, args.db_name)
        flush_redis(args.redis_url)
        return db_url, args.redis_url, f"database {args.db_name}, {args.redis_url}"
    sys.path.insert(0, str(REPO_ROOT))
    from core.embedded import EmbeddedServices
    from core.settings import Settings

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
        "DOODLE_HOME": str(home),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    doodle = doodle_command(args.doodle)
    _run_checked([*doodle, "db", "upgrade"], env, "doodle db upgrade")
    classes = ",".join(seed_words())
    _run_checked(
        [
            *doodle,
            "models",
            "import",
            str(REPO_ROOT / "ml/seed/quickdraw20_state_dict.pt"),
            "--classes",
            classes,
            "--alias",
            "production",
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
    procs.start(
        "worker",
        [*doodle, "worker", "--concurrency", str(args.worker_concurrency), "--loglevel", "WARNING"],
        env,
    )
    took = wait_ready(procs, ["api", "worker"], port, "/readyz")
    print(f"product ready on :{port} in {took:.1f}s ({services})", flush=True)
    target = Target(
        "product",
        "127.0.0.1",
        port,
        "/v1/recognitions",
        {
            "Content-Type": "application/json",
            "X-API-Key": CLIENT_KEY,
            "Prefer": f"wait={args.wait}",
        },
    )
    return System(
        "product",
        target,
        {"api": procs.procs["api"].pid, "worker": procs.procs["worker"].pid},
    )


def measure(
    system: System,
    bodies: Sequence[bytes],
    words: Sequence[str],
    meter: CpuMeter,
    args: argparse.Namespace,
    offset: int,
) -> dict[str, Any]:
    before = meter.snapshot()
    samples, elapsed = run_load(
        system.target,
        bodies,
        words,
        concurrency=args.concurrency,
        requests=args.requests,
        duration=args.duration,
        timeout=args.wait + 20,
        offset=offset,
    )
    cpu = CpuMeter.delta(before, meter.snapshot())
    machine = cpu.pop("_machine_busy")
    summary = summarize(samples, elapsed)
    ok = max(summary["ok"], 1)
    summary["cpu_s"] = cpu
    summary["cpu_ms_per_ok_request"] = {k: v * 1000 / ok for k, v in cpu.items()}
    ours = sum(cpu.values())
    # Cores busy during the run: ours (servers, load generator, Postgres, Redis) and the rest
    # of the machine (anything else running here: noise that steals CPU from the systems).
    summary["cores"] = {
        "machine": machine / elapsed,
        "measured": ours / elapsed,
        "other": max(machine - ours, 0.0) / elapsed,
    }
    return summary


def warm_up(
    system: System, bodies: Sequence[bytes], words: Sequence[str], n: int, concurrency: int
) -> None:
    if n <= 0:
        return
    samples, elapsed = run_load(
        system.target, bodies, words, concurrency=concurrency, requests=n, timeout=40
    )
    s = summarize(samples, elapsed)
    print(
        f"warm-up {system.name}: {s['ok']}/{s['requests']} ok, {s['throughput_rps']:.1f} req/s, "
        f"errors {s['error_kinds'] or 0}",
        flush=True,
    )


def environment() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = ""
    with contextlib.suppress(OSError, IndexError):
        head = (REPO_ROOT / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            commit = (REPO_ROOT / ".git" / head[5:]).read_text().strip()
        else:
            commit = head
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "load_generator": "same machine, closed loop, one http.client connection per thread",
    }


def _cpu_line(name: str, s: Mapping[str, Any]) -> str:
    per = s.get("cpu_ms_per_ok_request") or {}
    cores = s.get("cores") or {}
    parts = [f"{k} {_fmt(v)}" for k, v in per.items() if _numeric(v) and v >= 0.05]
    return (
        f"  {name}: cores busy {_fmt(cores.get('machine'), 2)} (other processes "
        f"{_fmt(cores.get('other'), 2)}); CPU ms per answer: " + ", ".join(parts)
    )


def report(result: Mapping[str, Any]) -> str:
    med = result["median"]
    rows = [(name, med[name]) for name in ("baseline", "product") if name in med]
    config = result["config"]
    amount = f"{config['duration']} s" if config["duration"] else f"{config['requests']} requests"
    lines = [
        f"Median of {config['repeats']} runs a system, concurrency {config['concurrency']}, "
        f"{amount} a run:",
        format_table(rows),
    ]
    r = result.get("ratio")
    if r:
        lines.append(
            f"product/baseline: throughput x{r['throughput']:.2f}, p50 x{r['p50']:.2f}, "
            f"p90 x{r['p90']:.2f}, p99 x{r['p99']:.2f}"
        )
    lines.append("")
    lines.append("Every run (alternating):")
    lines.append(
        format_table([(f"{run['system']} #{run['repeat'] + 1}", run) for run in result["runs"]])
    )
    lines.append("")
    lines.append("CPU (medians; postgres and redis count every such process on the machine):")
    for name, s in rows:
        lines.append(_cpu_line(name, s))
    stages = med.get("product", {}).get("stage_ms")
    if stages:
        lines.append(
            "  product worker stages p50/p99 ms: "
            + ", ".join(f"{k} {_fmt(v.get('p50'))}/{_fmt(v.get('p99'))}" for k, v in stages.items())
        )
    lines.append("")
    lines.append(
        f"Note: the load generator shares this {result['environment']['cpus']}-CPU machine with "
        "both systems (and Postgres, Redis); its CPU is listed as 'loadgen'."
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark the product against the seed's synchronous baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--concurrency", type=int, default=16, help="client threads")
    p.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    p.add_argument(
        "--duration", type=float, default=None, help="seconds a measurement (instead of --requests)"
    )
    p.add_argument("--repeats", type=int, default=3, help="measurements per system, alternating")
    p.add_argument("--warmup", type=int, default=64, help="warm-up requests per system")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "bench" / "latest.json")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each run, wait up to this many seconds for the machine to be quiet (0: no)",
    )
    p.add_argument(
        "--quiet-cores", type=float, default=0.3, help="'quiet': fewer cores busy than this"
    )
    p.add_argument("--systems", default="baseline,product", help="which systems to measure")
    p.add_argument("--wait", type=int, default=10, help="the product's Prefer: wait=N")
    p.add_argument("--api-workers", type=int, default=2)
    p.add_argument("--api-threads", type=int, default=16)
    p.add_argument("--worker-concurrency", type=int, default=2)
    p.add_argument("--baseline-workers", type=int, default=2)
    p.add_argument("--baseline-threads", type=int, default=8)
    p.add_argument(
        "--storage-url",
        default=None,
        help="object storage for both systems (default: a temporary local folder)",
    )
    p.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://root@127.0.0.1:5432/test"),
        help="a database on the Postgres server to create the benchmark database from",
    )
    p.add_argument(
        "--services",
        choices=("auto", "server", "embedded"),
        default="auto",
        help="the product's Postgres and Redis: the servers of --pg-admin-url / --redis-url, "
        "or embedded ones in a temporary folder; auto: the servers if they answer",
    )
    p.add_argument("--db-name", default="doodle_bench", help="dropped and recreated each run")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="flushed each run")
    p.add_argument(
        "--doodle", default=None, help="the doodle command (default: the one beside this Python)"
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - {"baseline", "product"}
    if unknown or not args.systems:
        p.error(f"--systems takes baseline and/or product, got {sorted(unknown)}")
    if args.concurrency < 1 or args.requests < 1 or args.repeats < 1:
        p.error("--concurrency, --requests and --repeats must be at least 1")
    return args


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="doodle-bench-"))
    storage_url = args.storage_url or (tmp / "objects").as_uri()
    procs = Processes(tmp)
    drawings = load_drawings(seed_words())
    bodies = request_bodies(drawings)
    words = [w for w, _ in drawings]
    print(
        f"{len(bodies)} drawings of {len(set(words))} words; logs in {tmp}; "
        f"storage {'(given)' if args.storage_url else storage_url}",
        flush=True,
    )
    systems: dict[str, System] = {}
    stack = contextlib.ExitStack()
    try:
        if "baseline" in args.systems:
            systems["baseline"] = start_baseline(procs, args, storage_url)
        if "product" in args.systems:
            systems["product"] = start_product(procs, args, storage_url, tmp / "home", stack)
        meter = CpuMeter({k: v for s in systems.values() for k, v in s.groups.items()})
        for system in systems.values():
            warm_up(system, bodies, words, args.warmup, args.concurrency)
        runs: list[dict[str, Any]] = []
        order = list(systems)
        for repeat in range(args.repeats):
            for name in order if repeat % 2 == 0 else list(reversed(order)):
                for proc_name in systems[name].groups:
                    procs.check_alive(proc_name)
                quiet = wait_quiet(args.quiet_wait, args.quiet_cores) if args.quiet_wait else -1
                # Same drawings for both systems within a repeat; another slice each repeat.
                summary = measure(
                    systems[name], bodies, words, meter, args, offset=repeat * args.requests
                )
                summary.update(system=name, repeat=repeat, load_before_cores=quiet)
                runs.append(summary)
                print(
                    f"run {repeat + 1}/{args.repeats} {name}: "
                    f"{summary['throughput_rps']:.1f} req/s, p50 {summary['p50_ms']:.0f} ms, "
                    f"p99 {summary['p99_ms']:.0f} ms, errors {summary['errors']}, "
                    f"top-1 {summary['accuracy'] * 100:.1f}%, other load "
                    f"{summary['cores']['other']:.2f} cores (before: {quiet:.2f})",
                    flush=True,
                )
        medians = {name: aggregate([r for r in runs if r["system"] == name]) for name in systems}
        result: dict[str, Any] = {
            "config": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k not in ("pg_admin_url", "storage_url")
            }
            | {"storage": "given" if args.storage_url else "temporary local folder"},
            "environment": environment(),
            "median": medians,
            "runs": runs,
        }
        if "baseline" in medians and "product" in medians:
            result["ratio"] = ratios(medians["product"], medians["baseline"])
        print()
        print(report(result))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nwrote {args.out}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        args.keep_tmp = True  # keep the servers' logs
        return 1
    finally:
        procs.stop()
        stack.close()  # embedded servers, if any
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
