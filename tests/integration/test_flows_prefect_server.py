"""`doodle flows` uses the Prefect server that answers on DOODLE_PREFECT_PORT (the one
`make run` starts), PREFECT_API_URL's when set, and else leaves Prefect to start its own.

A small real HTTP server stands in for Prefect's /api/health; the whole Prefect server
under `doodle run` is exercised in tests/e2e/test_make_run.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
import pytest

from cli import flows
from core.settings import Settings
from devtools.net import free_port


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/api/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"true" if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prefect_like() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Whatever `_export` writes to os.environ is put back after the test."""
    names = ("DATABASE_URL", "STORAGE_URL", "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_API_URL")
    for name in names:
        monkeypatch.setenv(name, "")  # recorded, so what the test writes is undone
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    # Unset (not blank) during the test; delenv of an unset variable would record nothing
    # and let the test's PREFECT_API_URL leak into the flow tests that follow.
    monkeypatch.delenv("PREFECT_API_URL")
    return monkeypatch


def _settings(tmp_path: Path, port: int) -> Settings:
    return Settings(
        home=tmp_path,
        database_url="postgresql://nobody@127.0.0.1:1/none",
        prefect_port=port,
    )


def test_the_running_server_is_used(environ, prefect_like: int, tmp_path: Path) -> None:
    flows._export(_settings(tmp_path, prefect_like))
    assert os.environ["PREFECT_API_URL"] == f"http://127.0.0.1:{prefect_like}/api"


def test_without_a_server_prefect_is_left_to_start_its_own(environ, tmp_path: Path) -> None:
    flows._export(_settings(tmp_path, free_port()))
    assert "PREFECT_API_URL" not in os.environ


def test_prefect_api_url_wins(environ, prefect_like: int, tmp_path: Path) -> None:
    given = f"http://localhost:{prefect_like}/api"
    environ.setenv("PREFECT_API_URL", given)
    flows._export(_settings(tmp_path, free_port()))
    assert os.environ["PREFECT_API_URL"] == given


def test_a_named_server_that_never_answers_is_a_clear_error(environ, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    with pytest.raises(click.ClickException, match="does not answer"):
        flows.wait_for_prefect(url, timeout=0.5)
