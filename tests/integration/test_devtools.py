"""devtools.net, devtools.databases and devtools.processes: what `make run`, the tests and the
benchmarks share."""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text

from core.processes import pid_alive
from db.session import make_engine
from devtools.databases import admin_engine, create_database, temporary_database
from devtools.net import free_port, port_open, wait_http
from devtools.processes import Processes


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first `not_ready` requests, then 200."""

    not_ready = 2
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        status = 503 if type(self).seen <= type(self).not_ready else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"warming up" if status == 503 else b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Answers.seen = 0
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_free_port_is_free_and_an_open_one_answers():
    port = free_port()
    assert not port_open("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert port_open("127.0.0.1", port)


def test_wait_http_returns_once_ready(server):
    assert wait_http(f"{server}/readyz", 10, poll=0.01) is None
    assert _Answers.seen == 3


def test_wait_http_reports_the_last_answer_at_the_deadline(server):
    _Answers.not_ready = 1_000
    try:
        last = wait_http(f"{server}/readyz", 0.3, poll=0.01)
    finally:
        _Answers.not_ready = 2
    assert last == "HTTP 503: warming up"


def test_wait_http_stops_when_told_to(server):
    assert wait_http(f"{server}/readyz", 10, keep_waiting=lambda: False) == "no answer"
    assert _Answers.seen == 0


def _databases(server_url: str) -> set[str]:
    engine = admin_engine(server_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def test_temporary_database_is_migrated_and_dropped(postgres_server_url):
    with temporary_database(postgres_server_url, prefix="doodle_dt_", migrated=True) as url:
        name = url.rsplit("/", 1)[-1].split("?")[0]
        assert name.startswith("doodle_dt_") and name in _databases(postgres_server_url)
        engine = make_engine(url)
        try:
            assert "alembic_version" in inspect(engine).get_table_names()
        finally:
            engine.dispose()
    assert name not in _databases(postgres_server_url)


def test_a_named_database_is_replaced_and_can_be_kept(postgres_server_url):
    name = "doodle_dt_named"
    url = create_database(postgres_server_url, name, replace=True)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE old (v int)"))
    engine.dispose()
    with temporary_database(postgres_server_url, name=name, keep=True) as again:
        engine = make_engine(again)
        try:
            assert inspect(engine).get_table_names() == []  # a fresh one, not the old
        finally:
            engine.dispose()
    assert name in _databases(postgres_server_url)
    with temporary_database(postgres_server_url, name=name):
        pass
    assert name not in _databases(postgres_server_url)


def test_a_bad_database_name_is_refused(postgres_server_url):
    with pytest.raises(ValueError, match="bad database name"):
        create_database(postgres_server_url, 'x"; DROP DATABASE test; --')


# Forks a child that ignores SIGTERM, prints its pid, and waits.
PARENT_AND_STUBBORN_CHILD = """
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(120)
    sys.exit()
print(pid, flush=True)
time.sleep(120)
"""


def test_stop_ends_the_whole_process_group(tmp_path):
    procs = Processes(tmp_path)
    procs.start("family", [sys.executable, "-c", PARENT_AND_STUBBORN_CHILD], {})
    deadline = time.monotonic() + 10
    while not (tmp_path / "family.log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int((tmp_path / "family.log").read_text())
    procs.stop(grace=0.5)
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)  # the SIGKILLed child is reaped by init
    assert not pid_alive(child)


def test_check_alive_tells_how_a_process_ended(tmp_path):
    procs = Processes(tmp_path)
    code = "print('cannot go on', flush=True); raise SystemExit(3)"
    procs.start("quitter", [sys.executable, "-c", code], {}).wait()
    with pytest.raises(RuntimeError, match="quitter exited with 3; its log ends:\ncannot go on"):
        procs.check_alive("quitter")
    procs.stop()
