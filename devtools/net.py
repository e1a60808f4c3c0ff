"""Ports and readiness: a free port to start something on, whether a port answers, and
waiting until an HTTP endpoint says it is ready.

HTTP goes through `http.client`, not urllib: urllib honours the *_proxy variables, and a
proxy must never stand between us and a server on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

POLL_SECONDS = 0.5


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout):
            return True
    except OSError:
        return False


def _status_200(status: int) -> bool:
    return status == 200


def wait_http(
    url: str,
    timeout: float,
    *,
    ready: Callable[[int], bool] = _status_200,
    keep_waiting: Callable[[], bool] = lambda: True,
    poll: float = POLL_SECONDS,
) -> str | None:
    """GET `url` until `ready(status)`: None then, else the last answer (or error) once
    `timeout` seconds passed or `keep_waiting()` turned false. `keep_waiting` may also
    raise, e.g. when the process that should answer has exited."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline and keep_waiting():
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if ready(response.status):
                return None
            last = f"HTTP {response.status}: {body[:300].decode(errors='replace')}"
        except (OSError, http.client.HTTPException) as exc:
            last = str(exc) or type(exc).__name__
        finally:
            conn.close()
        time.sleep(poll)
    return last
