"""How much of one HTTP/1.x request a buffer holds: the question the API's server asks
before it gives the request a thread (cli.http_worker).

Only the framing is read here (where the head ends, Content-Length, chunked sizes); the
request itself is parsed once, by gunicorn, when it is complete. Whatever this module
cannot frame with certainty (a malformed length, a body over the limit, a head that is too
long) goes to gunicorn's parser as it is, which answers it as before (400, 413...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

CRLF = b"\r\n"
HEAD_END = b"\r\n\r\n"
# gunicorn's own limits (request line 4094, 100 fields of 8190) stop a head long before this.
MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_SIZE_LINE = 1024  # a size line with extensions; longer is not a client of ours
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class Stage(enum.Enum):
    HEAD = "head"  # the head has not ended yet
    BODY = "body"  # the head has, the body has not
    READY = "ready"  # a whole request: give it a thread
    PARSER = "parser"  # framing left to gunicorn's parser: give it a thread as it is


@dataclass(frozen=True)
class Progress:
    stage: Stage
    expects_continue: bool = False  # `Expect: 100-continue` on a request whose body is due


_HEAD = Progress(Stage.HEAD)
_READY = Progress(Stage.READY)
_PARSER = Progress(Stage.PARSER)


def progress(buffer: bytes | bytearray, max_body_bytes: int) -> Progress:
    """Where the request at the start of `buffer` stands. A body announced larger than
    `max_body_bytes` goes to the parser at once: the app refuses it (413) unread."""
    head_end = buffer.find(HEAD_END)
    if head_end < 0:
        return _PARSER if len(buffer) > MAX_HEAD_BYTES else _HEAD
    body_start = head_end + len(HEAD_END)
    lengths, codings, expects = _framing_fields(bytes(buffer[:head_end]))
    if codings:
        # Chunked must be the last coding and must not come with a length (RFC 9112 6.1);
        # anything else is the parser's to refuse.
        if lengths or codings[-1] != b"chunked":
            return _PARSER
        stage = _chunked_stage(buffer, body_start, max_body_bytes)
    elif lengths:
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            return _PARSER
        length = int(lengths[0])
        if length > max_body_bytes:
            return _PARSER
        stage = Stage.READY if len(buffer) - body_start >= length else Stage.BODY
    else:
        return _READY
    if stage is Stage.BODY:
        return Progress(Stage.BODY, expects_continue=expects)
    return _READY if stage is Stage.READY else _PARSER


def _framing_fields(head: bytes) -> tuple[list[bytes], list[bytes], bool]:
    """(Content-Length values, transfer codings in order, Expect: 100-continue) of a head."""
    lengths: list[bytes] = []
    codings: list[bytes] = []
    expects = False
    for line in head.split(CRLF)[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower()
        if name == b"content-length":
            lengths.append(value.strip())
        elif name == b"transfer-encoding":
            codings += [c.strip().lower() for c in value.split(b",") if c.strip()]
        elif name == b"expect":
            expects = value.strip().lower() == b"100-continue"
    return lengths, codings, expects


def _chunked_stage(buffer: bytes | bytearray, pos: int, max_body_bytes: int) -> Stage:
    """Walk the chunks from `pos`: READY once the last chunk and its trailers are in."""
    total = 0
    while True:
        line_end = buffer.find(CRLF, pos)
        if line_end < 0:
            return Stage.PARSER if len(buffer) - pos > MAX_CHUNK_SIZE_LINE else Stage.BODY
        size_text = bytes(buffer[pos:line_end]).split(b";", 1)[0].strip()
        if not size_text or not HEX_DIGITS.issuperset(size_text):
            return Stage.PARSER
        size = int(size_text, 16)
        total += size
        if total > max_body_bytes:
            return Stage.PARSER
        if size == 0:
            # Trailer fields, then an empty line; none at all is just the empty line.
            trailers = line_end + len(CRLF)
            if buffer[trailers : trailers + 2] == CRLF:
                return Stage.READY
            if buffer.find(HEAD_END, line_end) >= 0:
                return Stage.READY
            return Stage.PARSER if len(buffer) - trailers > MAX_HEAD_BYTES else Stage.BODY
        data_end = line_end + len(CRLF) + size
        if len(buffer) < data_end + len(CRLF):
            return Stage.BODY
        if buffer[data_end : data_end + 2] != CRLF:
            return Stage.PARSER
        pos = data_end + len(CRLF)
