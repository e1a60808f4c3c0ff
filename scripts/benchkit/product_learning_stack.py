"""A fresh product for one repetition of the product learning benchmark: `doodle run` (what
`make run` runs) as a subprocess, in a temporary home, on ports of its own.

- embedded: `doodle run` starts embedded Postgres and Redis under the temporary home, as on a
  fresh machine; objects go to a folder there.
- servers: a new database on the machine's Postgres (dropped at the end) and a Redis db of its
  own (flushed before and after); objects in a folder of the temporary home.

The seed model and sample data are imported by `doodle run` itself (cli/dev.py
ensure_seed_model). The commands the benchmark runs against it (`doodle flows run`, `doodle
eval`) get the same environment, as a user's shell beside `make run` would.

Everything started leads a session of its own and gets SIGTERM if this process dies
(PR_SET_PDEATHSIG), so a killed benchmark leaves nothing behind; `stop` also kills whatever of
`doodle run`'s tree outlived it and the embedded servers if `doodle run` could not stop them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from benchkit import CLIENT_KEY, REPO_ROOT
from benchkit.procs import doodle_command, flush_redis, wait_ready
from devtools.databases import create_database, drop_database
from devtools.net import free_port, wait_http
from devtools.postgres_server import EmbeddedPostgres
from devtools.processes import Processes
from devtools.redis_server import EmbeddedRedis

ADMIN_TOKEN = "bench-admin-token"
READY_SECONDS = 300.0
STOP_SECONDS = 30.0
PR_SET_PDEATHSIG = 1
# Variables of the caller's shell that would point the product somewhere else.
_CLEARED = ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "PREFECT_API_URL", "PREFECT_HOME")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class GuardedProcesses(Processes):
    """devtools.processes.Processes whose children die with this process."""

    preexec = staticmethod(_die_with_parent)


def run_command(
    argv: Sequence[str], env: Mapping[str, str], log: Path, timeout: float, cwd: Path = REPO_ROOT
) -> tuple[str, float]:
    """Run to the end in a session of its own; (stdout, wall seconds). stderr goes to `log`.
    Ctrl-C or a timeout kills its whole group."""
    started = time.perf_counter()
    with log.open("ab") as err:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(argv[-3:])} failed ({proc.returncode}):\n{tail}")
    return out.decode(errors="replace"), seconds


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON object a `doodle` command printed last."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise ValueError(f"no JSON line in {stdout[-500:]!r}")


@dataclass
class Stack:
    """One fresh product. Enter to start it; `base_url`, `env` and `doodle` to use it."""

    services: str  # "embedded" or "servers"
    pg_server_url: str = "postgresql://root@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/13"
    keep: bool = False
    # Another checkout of the product to run (e.g. a `git worktree` of an earlier commit),
    # with this venv; None: this one, through the venv's `doodle`.
    product: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    base_url: str = ""

    def __post_init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="doodle-product-learning-"))
        self.home = self.tmp / "home"
        self.cwd = self.product or REPO_ROOT
        self.doodle = [sys.executable, "-m", "cli.main"] if self.product else doodle_command()
        self.procs = GuardedProcesses(self.tmp, cwd=self.cwd)
        self.db_name: str | None = None
        self.ports: dict[str, int] = {}

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
        self.ports = {"api": free_port(), "prefect": free_port()}
        env.update(
            {
                "DOODLE_HOME": str(self.home),
                "PORT": str(self.ports["api"]),
                "DOODLE_PREFECT_PORT": str(self.ports["prefect"]),
                "STORAGE_URL": (self.home / "objects").as_uri(),
                "DOODLE_CLIENT_KEYS": CLIENT_KEY,
                "DOODLE_ADMIN_TOKENS": ADMIN_TOKEN,
                # The cycle is started and timed by hand (`doodle flows run flywheel`); the
                # trigger, which would start the same cycle once enough labels arrive, looks
                # only at start-up (nothing to do then) and a day later.
                "DOODLE_FLYWHEEL_POLL_SECONDS": "86400",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.product is not None:
            env["PYTHONPATH"] = str(self.product)
        if self.services == "servers":
            self.db_name = f"doodle_plbench_{uuid.uuid4().hex[:10]}"
            env["DATABASE_URL"] = create_database(self.pg_server_url, self.db_name)
            flush_redis(self.redis_url)
            env["REDIS_URL"] = self.redis_url
        else:
            self.ports |= {"postgres": free_port(), "redis": free_port()}
            env["DOODLE_EMBEDDED_POSTGRES_PORT"] = str(self.ports["postgres"])
            env["DOODLE_EMBEDDED_REDIS_PORT"] = str(self.ports["redis"])
        return env

    def __enter__(self) -> Stack:
        try:
            self.env = self._environment()
            self.base_url = f"http://127.0.0.1:{self.ports['api']}"
            started = time.perf_counter()
            self.procs.start("doodle-run", [*self.doodle, "run"], self.env)
            wait_ready(self.procs, ["doodle-run"], self.ports["api"], "/readyz", READY_SECONDS)
            # `doodle flows run` starts a temporary Prefect server of its own unless
            # `doodle run`'s answers: wait for it, as a user would see its banner first.
            prefect = f"http://127.0.0.1:{self.ports['prefect']}/api/health"
            if wait_http(prefect, READY_SECONDS) is not None:
                raise RuntimeError(f"Prefect server not up: see {self.tmp}/doodle-run.log")
            self.ready_seconds = round(time.perf_counter() - started, 1)
        except BaseException:
            self.stop(failed=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failed = exc_type is not None and not issubclass(exc_type, KeyboardInterrupt)
        self.stop(failed=failed)

    def run(self, args: Sequence[str], name: str, timeout: float = 600) -> tuple[str, float]:
        """`doodle ARGS` beside the running product, with its environment."""
        argv = [*self.doodle, *args]
        return run_command(argv, self.env, self.tmp / f"{name}.log", timeout, self.cwd)

    def stop(self, failed: bool = False) -> None:
        """Stop `doodle run` (it stops its children and servers), then whatever outlived it."""
        tree = self._descendants()
        self.procs.stop(grace=STOP_SECONDS)
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self._stop_embedded()
        if self.db_name is not None:
            drop_database(self.pg_server_url, self.db_name)
            flush_redis(self.redis_url)
            self.db_name = None
        if failed or self.keep:
            print(f"kept {self.tmp} (logs)", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _descendants(self) -> list[psutil.Process]:
        proc = self.procs.procs.get("doodle-run")
        if proc is None:
            return []
        with contextlib.suppress(psutil.Error):
            return list(psutil.Process(proc.pid).children(recursive=True))
        return []

    def _stop_embedded(self) -> None:
        """Embedded servers run detached from `doodle run`: stop any it left running."""
        if "postgres" not in self.ports:
            return
        servers: list[EmbeddedPostgres | EmbeddedRedis] = [
            EmbeddedPostgres(self.home / "postgres", self.ports["postgres"]),
            EmbeddedRedis(self.home / "redis", self.ports["redis"]),
        ]
        for server in servers:
            with contextlib.suppress(Exception):
                if server.alive():
                    print(f"stopping a leftover {type(server).__name__}", flush=True)
                    server.stop()


def log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
