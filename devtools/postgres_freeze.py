"""A private PostgreSQL that can be frozen: every one of its processes stopped (SIGSTOP).

A stopped server is the unkind outage: its kernel still accepts connections and
acknowledges what clients send (so TCP keepalives and timeouts see nothing wrong), but
no query, commit or new session is ever answered until it is continued. The frozen-Postgres
test and `scripts/frozen_postgres.py` use it; never point it at a shared server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from db.migrate import upgrade
from devtools.net import free_port
from devtools.postgres_server import EmbeddedPostgres


@dataclass
class PrivatePostgres:
    server: EmbeddedPostgres

    @property
    def url(self) -> str:
        return self.server.url()

    def postmaster_pid(self) -> int:
        return int((self.server.datadir / "postmaster.pid").read_text().split()[0])

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the server stopped inside the block, continued after it."""
        postmaster = psutil.Process(self.postmaster_pid())
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL of its own on a free port, migrated to head; stopped and deleted after.

    In a folder directly under the temp directory (not pytest's tmp_path): as root the
    cluster belongs to another user, who needs access to every folder above it.
    """
    root = Path(tempfile.mkdtemp(prefix="doodle-frozen-pg-"))
    os.chmod(root, 0o755)
    server = EmbeddedPostgres(root / "postgres", free_port())
    try:
        server.up()
        upgrade(server.url())
        yield PrivatePostgres(server)
    finally:
        # A block that failed while frozen must not leave a stopped server behind.
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
            for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
                process.send_signal(signal.SIGCONT)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
