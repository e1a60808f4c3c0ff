"""Slow clients never hold the API's threads (cli/http_worker.py), through the real `doodle api`.

The API runs as the tests start it: 2 processes x 8 threads, so 60 slow connections are
almost four times its threads. Under stock gthread each would hold a thread while it
dripped its head, and /healthz stopped answering. The slow connections come from other
loopback addresses (127.0.0.2...), the probes and recognitions from 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time

import requests

from tests.fixtures.app import CLIENT_KEY
from tests.fixtures.benchkit import load_benchkit

load_benchkit()
from benchkit.slow_clients import HealthProbe, SlowClients  # noqa: E402

STAR = [[[0, 100, 200, 100, 0], [0, 200, 0, 0, 0]]]
TIMEOUT_S = 3  # header and body timeouts of these tests' API
LIMITS = {
    "DOODLE_API_HEADER_TIMEOUT": str(TIMEOUT_S),
    "DOODLE_API_BODY_TIMEOUT": str(TIMEOUT_S),
    # This test's API needs no live worker to be ready (another test covers readiness).
    "DOODLE_READY_MIN_WORKERS": "0",
}
SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def _answer_and_close(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer, time.monotonic() - started


def test_sixty_slow_connections_stop_neither_healthz_nor_recognitions(stack):
    stack.start_worker()
    stack.wait_worker_ready()
    stack.start_api(**LIMITS)
    recognised: list[tuple[int, str]] = []
    stop = threading.Event()

    def recognise() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                try:
                    r = http.post(
                        f"{stack.base_url}/v1/recognitions",
                        json={"drawing": STAR},
                        headers={"X-API-Key": CLIENT_KEY, "Prefer": "wait=10"},
                        timeout=15,
                    )
                    recognised.append((r.status_code, r.json().get("status", "")))
                except requests.RequestException as exc:
                    recognised.append((0, type(exc).__name__))

    with (
        HealthProbe("127.0.0.1", stack.port) as probe,
        SlowClients("127.0.0.1", stack.port, 60, SOURCES, drip_seconds=0.5) as slow,
    ):
        client = threading.Thread(target=recognise, daemon=True)
        client.start()
        time.sleep(10)  # the hold: what the probe and the client see meanwhile is asserted
        held_at_end = len(slow.held)
        stop.set()
        client.join(timeout=20)

    assert len(probe.probes) >= 8, probe.summary()
    assert probe.failures == [], probe.summary()
    assert len(recognised) >= 10 and set(recognised) == {(200, "done")}, recognised[:10]
    # The server cut the slow ones off after the timeouts (408) and they came back.
    assert slow.tally.answers["408"] >= 60, slow.tally.as_dict()
    assert held_at_end >= 50, slow.tally.as_dict()


def test_a_body_shorter_than_its_content_length_is_cut_off_at_the_body_timeout(stack):
    stack.start_api(**LIMITS)
    sock = _connect(stack.port)
    head = b"POST /v1/recognitions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"X-API-Key: " + CLIENT_KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n{")
    answer, took = _answer_and_close(sock, limit=30)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"code": "request_timeout"' in answer and b"body" in answer, answer
    # Not before the body timeout, and nowhere near the 40 s of stock gthread.
    assert TIMEOUT_S - 0.1 <= took < TIMEOUT_S + 5, took


def test_a_head_that_drips_is_cut_off_at_the_header_timeout(stack):
    stack.start_api(**LIMITS)
    sock = _connect(stack.port)
    started = time.monotonic()
    for byte in b"GET /healthz HTTP/1.1\r\nX: aaaaaaaaaaaa":
        try:
            sock.send(bytes([byte]))
        except OSError:
            break  # closed by the server
        time.sleep(0.25)
        if time.monotonic() - started > TIMEOUT_S + 5:
            break
    answer, _ = _answer_and_close(sock, limit=10)
    took = time.monotonic() - started
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and b"head" in answer, answer
    assert TIMEOUT_S - 0.1 <= took < TIMEOUT_S + 5, took


def test_one_address_gets_at_most_its_connections_and_the_rest_429(stack):
    per_process = 5
    stack.start_api(**LIMITS, DOODLE_API_CONNECTIONS_PER_ADDRESS=str(per_process))
    idle = [_connect(stack.port, "127.0.0.2") for _ in range(30)]
    try:
        refused = 0
        for sock in idle:
            sock.settimeout(1.0)
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue  # held: it waits for its request
            if answer.startswith(b"HTTP/1.1 429 "):
                refused += 1
                assert b"\r\nRetry-After: 1\r\n" in answer, answer
        # Two processes hold at most 5 each; the others were answered 429 at once.
        assert refused >= 30 - 2 * per_process, refused
        r = requests.get(f"{stack.base_url}/healthz", timeout=2)  # another address: served
        assert r.status_code == 200
    finally:
        for sock in idle:
            sock.close()
