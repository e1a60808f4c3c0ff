"""The API's gunicorn worker: gthread, except that a connection gets a thread only once its
whole request (head and body) has arrived.

gunicorn's gthread worker gives a thread to every connection it accepts, and the thread
reads the request blocking, without a deadline: 40 idle connections, or one that sends a
header byte every few seconds, held every thread of both processes, and /healthz failed.
Here the worker's event loop (the one that already watches kept-alive connections) reads
requests into a buffer, without blocking:

- the head must arrive within `header_timeout` seconds of the connection (or, on a kept-alive
  connection, of the next request's first byte), the body within `body_timeout` seconds of
  the head's end; else 408 and the connection closes;
- an address holds at most `connections_per_address` connections of the process; the next
  one gets 429 and is closed (0: no limit, say behind a proxy that limits instead);
- a complete request goes to the thread pool with its bytes, and gunicorn parses it as
  before; what http_framing cannot frame goes as it is, and the thread's reads then time
  out after `body_timeout` (also the bound on a client that does not read its answer).

Built on gunicorn's ThreadWorker internals (pinned in requirements.txt): `enqueue_req` is
the one way to the pool (new connections, kept-alive ones that became readable, bytes read
ahead), `murder_keepalived` runs on every turn of the loop.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import time
from collections import Counter
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from cli.http_framing import Stage, progress

RECV_BYTES = 64 * 1024
EXPIRY_CHECK_SECONDS = 0.25
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _answer(status: str, code: str, message: str, extra: str = "") -> bytes:
    """A whole response in the API's error shape, sent as the connection closes."""
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    ).encode() + body


class BufferedConn(TConn):
    """A gthread connection with the bytes read so far and a deadline to read the rest by."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.address = client[0] if isinstance(client, tuple) else "local"
        self.inbox = bytearray()
        self.deadline = 0.0
        self.in_body = False
        self.sent_continue = False
        self.thread_read_timeout: float | None = None
        self.on_close: Any = None

    def begin(self, deadline: float) -> None:
        """A new request is due (on a new or a kept-alive connection)."""
        self.deadline, self.in_body, self.sent_continue = deadline, False, False

    def init(self) -> None:
        """In the thread: gunicorn's parser, given the bytes the event loop read."""
        super().init()
        if self.is_http2:
            return
        # gunicorn set the socket blocking; a read or write that stalls still ends.
        self.sock.settimeout(self.thread_read_timeout)
        if self.inbox:
            self.parser.unreader.unread(bytes(self.inbox))
            self.inbox.clear()

    def close(self, graceful: bool = False) -> None:
        if self.on_close is not None:
            self.on_close(self)
            self.on_close = None
        super().close(graceful)


class BufferedThreadWorker(ThreadWorker):
    """Set the limits on a subclass (`configured`); the defaults are the settings'."""

    header_timeout = 10.0
    body_timeout = 15.0
    connections_per_address = 256
    max_body_bytes = 1_000_000

    @classmethod
    def configured(
        cls,
        *,
        header_timeout: float,
        body_timeout: float,
        connections_per_address: int,
        max_body_bytes: int,
    ) -> type[BufferedThreadWorker]:
        return type(
            cls.__name__,
            (cls,),
            {
                "header_timeout": header_timeout,
                "body_timeout": body_timeout,
                "connections_per_address": connections_per_address,
                "max_body_bytes": max_body_bytes,
            },
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: dict[BufferedConn, None] = {}  # in arrival order, being read
        self.per_address: Counter[str] = Counter()
        self.next_expiry_check = 0.0

    # ------------------------------------------------------------------ connections

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        conn = BufferedConn(self.cfg, sock, client, listener.getsockname())
        limit = self.connections_per_address
        if limit and self.per_address[conn.address] >= limit:
            message = f"more than {limit} connections from one address"
            self._refuse(
                conn,
                _answer(
                    "429 Too Many Requests",
                    "too_many_connections",
                    message,
                    "Retry-After: 1\r\n",
                ),
            )
            return
        self.nr_conns += 1
        self.per_address[conn.address] += 1
        conn.on_close = self._forget
        conn.thread_read_timeout = self.body_timeout
        self.enqueue_req(conn)

    def _forget(self, conn: BufferedConn) -> None:
        self.per_address[conn.address] -= 1
        if self.per_address[conn.address] <= 0:
            del self.per_address[conn.address]

    def _refuse(self, conn: BufferedConn, answer: bytes) -> None:
        """Answer and close, never blocking the loop (a full send buffer drops the answer)."""
        try:
            conn.sock.setblocking(False)
            conn.sock.send(answer)
        except OSError:
            pass
        conn.close()

    # ------------------------------------------------------------------ reading

    def enqueue_req(self, conn: BufferedConn) -> None:
        """Every way to a thread comes here: read until the request is whole, then go."""
        conn.sock.setblocking(False)  # a kept-alive one comes from a thread's blocking reads
        if conn.parser is not None:  # kept alive: what the last request's reads took ahead
            conn.inbox[:0] = conn.parser.unreader.take_buffered()
        conn.begin(time.monotonic() + self.header_timeout)
        self._receive(conn)

    def _receive(self, conn: BufferedConn, _fileobj: Any = None) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            self._drop(conn)
            return
        if data == b"":
            # The client closed its side: a partial request still gets the parser's answer.
            if conn.inbox:
                self._dispatch(conn)
            else:
                self._drop(conn)
            return
        if data:
            conn.inbox += data
        state = progress(conn.inbox, self.max_body_bytes)
        if state.stage in (Stage.READY, Stage.PARSER):
            self._dispatch(conn)
            return
        if state.stage is Stage.BODY and not conn.in_body:
            conn.in_body = True
            conn.deadline = time.monotonic() + self.body_timeout
        if state.expects_continue and not conn.sent_continue:
            conn.sent_continue = True
            with contextlib.suppress(OSError):
                conn.sock.send(CONTINUE)
        if conn not in self.reading:
            self.reading[conn] = None
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._receive, conn))

    def _unwatch(self, conn: BufferedConn) -> None:
        if conn in self.reading:
            del self.reading[conn]
            self.poller.unregister(conn.sock)

    def _dispatch(self, conn: BufferedConn) -> None:
        self._unwatch(conn)
        conn.data_ready = True  # gthread's own wait for a first byte is not needed
        super().enqueue_req(conn)

    def _drop(self, conn: BufferedConn, answer: bytes | None = None) -> None:
        self._unwatch(conn)
        self.nr_conns -= 1
        if answer is None:
            conn.close()
        else:
            self._refuse(conn, answer)

    def handle_request(self, req: Any, conn: BufferedConn) -> Any:
        if conn.sent_continue:
            req._expected_100_continue = False  # the loop already said 100 Continue
        return super().handle_request(req, conn)

    # ------------------------------------------------------------------ deadlines

    def murder_keepalived(self, force: bool = False) -> None:
        super().murder_keepalived(force)
        now = time.monotonic()
        if not self.alive or force:
            for conn in list(self.reading):  # stopping: nobody will answer them
                self._drop(conn)
            return
        if now < self.next_expiry_check:
            return
        self.next_expiry_check = now + EXPIRY_CHECK_SECONDS
        for conn in [c for c in self.reading if c.deadline <= now]:
            part = "body" if conn.in_body else "head"
            limit = self.body_timeout if conn.in_body else self.header_timeout
            message = f"the request's {part} did not arrive within {limit:g} s"
            self._drop(conn, _answer("408 Request Timeout", "request_timeout", message))
