"""No body, header or query gets a 500: broken HTTP framing against a real `doodle api`
(gunicorn: Flask's test client cannot send a malformed chunked body) on every route that
reads a body, and the admin page's inputs through the test client, which must be refused as
the `/v1` API refuses them. Redirects never take the Host header's word."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from devtools.net import free_port, wait_http
from devtools.processes import Processes
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, post_recognition, recognize
from tests.fixtures.players import new_player

STARTUP_SECONDS = 60
RID = "00000000-0000-4000-8000-000000000001"


class RawServer:
    """`doodle api` on a free port, spoken to over raw sockets."""

    def __init__(self, port: int, processes: Processes) -> None:
        self.port = port
        self.processes = processes

    def send(self, data: bytes) -> bytes:
        """Send `data`, close our side, and read the whole answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer

    def log(self) -> str:
        return (self.processes.log_dir / "api.log").read_text(errors="replace")


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines).encode() + b"\r\n"


def _status(answer: bytes) -> int:
    found = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert found, f"no HTTP answer: {answer[:200]!r}"
    return int(found.group(1))


def _json_body(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[RawServer]:
    settings.home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.db_url,
        "REDIS_URL": settings.broker_url,
        "STORAGE_URL": settings.object_store_url,
        "DOODLE_CLIENT_KEYS": ",".join(settings.client_keys),
        "DOODLE_ADMIN_TOKENS": ",".join(settings.admin_tokens),
        "DOODLE_HOME": str(settings.home),
        "PORT": str(port),
    }
    processes = Processes(tmp_path)
    argv = [sys.executable, "-m", "cli.main", "api", "--host", "127.0.0.1", "--workers", "1"]
    processes.start("api", argv, env)
    try:

        def running() -> bool:
            processes.check_alive("api")
            return True

        last = wait_http(f"http://127.0.0.1:{port}/healthz", STARTUP_SECONDS, keep_waiting=running)
        tail = processes.log_tail("api")
        assert last is None, f"api not up in {STARTUP_SECONDS}s ({last}):\n{tail}"
        yield RawServer(port, processes)
    finally:
        processes.stop(grace=15)


def _web_login(server: RawServer) -> dict[str, str]:
    """Headers of a logged-in admin page user: its session cookie and CSRF token (and the
    login form's cookie, so that a login form is read too)."""
    form = server.send(_head("GET", "/admin/login", {}) + b"\r\n")
    found = re.search(rb"doodle_admin_login=([^;]+)", form)
    assert found, form[:500]
    login_csrf = found.group(1).decode()
    fields = {"csrf_token": login_csrf, "token": ADMIN_TOKEN, "next": "/admin/doodles"}
    data = urllib.parse.urlencode(fields).encode()
    headers = {
        "Cookie": f"doodle_admin_login={login_csrf}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(data)),
    }
    answer = server.send(_head("POST", "/admin/login", headers) + b"\r\n" + data)
    assert _status(answer) == 303, answer[:500]
    found = re.search(rb"doodle_admin_session=([^;]+)", answer)
    assert found
    cookie = f"doodle_admin_session={found.group(1).decode()}; doodle_admin_login={login_csrf}"
    page = server.send(_head("GET", "/admin/doodles", {"Cookie": cookie}) + b"\r\n")
    csrf = re.search(rb'<meta name="csrf-token" content="([^"]+)">', page)
    assert csrf, page[:500]
    return {"Cookie": cookie, "X-CSRF-Token": csrf.group(1).decode()}


API = {"X-API-Key": CLIENT_KEY, "Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# (method, path, headers, whether the admin page's session is needed)
BODY_ROUTES = [
    ("POST", "/v1/recognitions", {**API, **JSON}, False),
    ("POST", "/v1/recognitions?word=cat", {**API, "Content-Type": "image/png"}, False),
    ("POST", "/v1/guesses", {**API, **JSON}, False),
    ("POST", "/v1/admin/models/1/promote", {**API, **JSON}, False),
    ("POST", "/v1/admin/models/rollback", {**API, **JSON}, False),
    ("POST", f"/v1/admin/reviews/{RID}", {**API, **JSON}, False),
    ("POST", "/v1/admin/doodles/decisions", {**API, **JSON}, False),
    ("POST", "/v1/admin/cycles", {**API, **JSON}, False),
    ("POST", "/v1/admin/words/cat", {**API, **JSON}, False),
    ("POST", "/admin/login", FORM, True),
    ("POST", "/admin/doodles/decisions", JSON, True),
    ("POST", "/admin/models/1/promote", FORM, True),
    ("POST", "/admin/models/rollback", FORM, True),
]
CHUNKED = {"Transfer-Encoding": "chunked"}
# What follows the headers' blank line, with the framing header that goes with it.
BROKEN_FRAMING = {
    "bad chunk size": (CHUNKED, b"zz\r\n{}\r\n0\r\n\r\n"),
    "EOF mid-chunk": (CHUNKED, b'10\r\n{"a":'),
    "no last chunk": (CHUNKED, b"2\r\n{}\r\n"),
    "bad chunk extension": (CHUNKED, b"2;\x00\r\n{}\r\n0\r\n\r\n"),
    "shorter than Content-Length": ({"Content-Length": "50"}, b"{}"),
}


def test_broken_framing_is_a_400_on_every_body_route(server: RawServer) -> None:
    web = _web_login(server)
    answers: dict[tuple[str, str], int] = {}
    for method, path, headers, needs_login in BODY_ROUTES:
        for name, (framing, body) in BROKEN_FRAMING.items():
            sent = {**headers, **(web if needs_login else {}), **framing}
            answer = server.send(_head(method, path, sent) + b"\r\n" + body)
            answers[(path, name)] = _status(answer)
            if path.startswith("/v1/") and _status(answer) == 400:
                error = _json_body(answer)["error"]
                assert error["message"].startswith("malformed request body"), error
    wrong = {key: status for key, status in answers.items() if status != 400}
    assert wrong == {}, "\n".join(map(str, wrong.items()))
    assert "unhandled error" not in server.log()


@pytest.mark.parametrize(
    "query",
    ["?next=%0d%0aSet-Cookie:%20x=1", "?word=%00", "?after=%ff%fe", "?limit=" + "9" * 30, "?x=%0a"],
)
def test_junk_in_the_query_is_never_a_500(server: RawServer, query: str) -> None:
    web = _web_login(server)
    for path, headers in [
        ("/v1/admin/doodles", API),
        ("/v1/admin/reviews", API),
        ("/v1/words", API),
        (f"/v1/recognitions/{RID}", API),
        ("/admin/login", {}),
        ("/admin/doodles", web),
        ("/admin/reviews", web),
    ]:
        answer = server.send(_head("GET", path + query, headers) + b"\r\n")
        assert _status(answer) < 500, (path, query, answer[:300])
        assert b"\r\nSet-Cookie: x=1" not in answer
    assert "unhandled error" not in server.log()


def test_routing_redirects_never_name_the_host_header(server: RawServer) -> None:
    # Routing's own redirects: strict slashes, merged slashes (the test client cannot send
    # a path that starts with //).
    for path, expected in [("/admin", "/admin/"), ("//admin//doodles", "/admin/doodles")]:
        head = _head("GET", path, {}).replace(b"Host: 127.0.0.1", b"Host: evil.example")
        answer = server.send(head + b"\r\n")
        assert 300 <= _status(answer) < 400, answer[:300]
        assert re.findall(rb"\r\nLocation: ([^\r]*)", answer) == [expected.encode()]


# Admin page inputs, through the test client.

REVIEWER_TOKEN = "test-reviewer-token"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, reviewer_tokens=(REVIEWER_TOKEN,))


def _log_in(client) -> dict[str, str]:
    form = client.get("/admin/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found
    fields = {"csrf_token": found.group(1), "token": ADMIN_TOKEN, "next": "/admin/doodles"}
    assert client.post("/admin/login", data=fields).status_code == 303
    page = client.get("/admin/doodles")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert csrf
    return {"X-CSRF-Token": csrf.group(1)}


@pytest.fixture
def kept_doodle(client, worker_runtime, sample_drawings, seed_version) -> uuid.UUID:
    player, secret = new_player(client)
    body = {
        "player_id": player,
        "drawing": sample_drawings["apple"][0]["drawing"],
        "word": "apple",
        "consent": {"store": True, "train": True, "version": "2026-11"},
    }
    rid = uuid.UUID(post_recognition(client, body, secret)["id"])
    assert recognize(worker_runtime, rid) == "done"
    return rid


def _bodies(rid: uuid.UUID) -> dict[str, bytes]:
    ids = [str(rid)]

    def labelled(label: str) -> bytes:
        return json.dumps({"ids": ids, "action": "label", "label": label}).encode()

    return {
        # Lower-cased, each 'İ' becomes two characters: 128, over the label's 64.
        "64 dotted capital I": labelled("İ" * 64),
        "100k-deep array": b"[" * 100_000 + b"]" * 100_000,
        "100k-deep object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "invalid UTF-8": b'{"ids": ["\xff"], "action": "label", "label": "\xc3"}',
        "NUL in the label": labelled("c\0t"),
        "huge number id": b'{"ids": [1e999999], "action": "discard"}',
        "id not a uuid": json.dumps({"ids": ["../../etc"], "action": "discard"}).encode(),
        "label too long": labelled("a" * 10**5),
        "not an object": b'"discard"',
    }


def test_the_admin_page_refuses_bad_decisions_as_the_api_does(client, kept_doodle) -> None:
    headers = {**_log_in(client), "Content-Type": "application/json"}
    api = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    before = client.get("/v1/admin/doodles", headers=api).json["doodles"]
    for name, body in _bodies(kept_doodle).items():
        page = client.post("/admin/doodles/decisions", data=body, headers=headers)
        v1 = client.post("/v1/admin/doodles/decisions", data=body, headers=api)
        assert v1.status_code == 400, (name, v1.text)
        assert page.status_code == 400, (name, page.text)
        assert page.json == v1.json, name
    # The doodle took no decision from any of them.
    assert client.get("/v1/admin/doodles", headers=api).json["doodles"] == before
    assert [d["id"] for d in before] == [str(kept_doodle)]


def test_the_admin_page_still_decides(client, kept_doodle) -> None:
    headers = _log_in(client)
    body = {"ids": [str(kept_doodle)], "action": "label", "label": "cup"}
    response = client.post("/admin/doodles/decisions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json["results"][str(kept_doodle)]["label"] == "cup"
    plain = client.post("/admin/doodles/decisions", data=json.dumps(body), headers=headers)
    assert plain.status_code == 400 and plain.json["error"]["details"]["field"] == "body"


@pytest.mark.parametrize(
    "target",
    [
        "/admin/doodles\r\nSet-Cookie: x=1",
        "/admin/doodles\n",
        "/admin\0",
        "/admin/\\evil.example",
        "//evil.example/admin",
        "https://evil.example/admin",
        "/administrator",
    ],
)
def test_login_never_redirects_where_next_says_unless_it_is_a_page_of_the_admin(
    client, target: str
) -> None:
    form = client.get("/admin/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found
    fields = {"csrf_token": found.group(1), "token": ADMIN_TOKEN, "next": target}
    response = client.post("/admin/login", data=fields)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/doodles"
    assert "x=1" not in response.headers.getlist("Set-Cookie")


def test_login_keeps_a_next_page_of_the_admin(client) -> None:
    form = client.get("/admin/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found
    target = "/admin/doodles?word=cat&review=pending"
    fields = {"csrf_token": found.group(1), "token": ADMIN_TOKEN, "next": target}
    response = client.post("/admin/login", data=fields)
    assert response.headers["Location"] == target


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/admin", "/admin/"),  # strict slashes: routing's own redirect
        ("/admin/", "/admin/login?next=/admin/"),  # not logged in: to the login page
        ("/admin/doodles", "/admin/login?next=/admin/doodles"),
    ],
)
def test_redirects_never_name_the_host_header(client, path: str, expected: str) -> None:
    response = client.get(path, headers={"Host": "evil.example"})
    assert 300 <= response.status_code < 400
    assert response.headers["Location"] == expected
