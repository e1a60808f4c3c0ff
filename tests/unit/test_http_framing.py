"""cli.http_framing: when a buffered request is whole, and what it leaves to gunicorn's parser."""

from __future__ import annotations

import pytest

from cli.http_framing import MAX_HEAD_BYTES, Stage, progress

LIMIT = 1000
POST = b"POST /v1/recognitions HTTP/1.1\r\nHost: x\r\n"


def stage(buffer: bytes, limit: int = LIMIT) -> Stage:
    return progress(buffer, limit).stage


def test_a_head_is_due_until_its_empty_line() -> None:
    assert stage(b"GET /healthz HTTP/1.1\r\nHost: x\r\n") is Stage.HEAD
    assert stage(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") is Stage.READY
    assert stage(b"G") is Stage.HEAD


def test_a_head_that_never_ends_goes_to_the_parser_past_the_limit() -> None:
    assert stage(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES) is Stage.PARSER


@pytest.mark.parametrize("name", [b"Content-Length", b"content-length", b"CONTENT-LENGTH"])
def test_a_body_of_known_length_is_due_until_all_of_it_is_in(name: bytes) -> None:
    head = POST + name + b": 10\r\n\r\n"
    assert stage(head) is Stage.BODY
    assert stage(head + b"0123456789") is Stage.READY
    assert stage(head + b"0123456789GET / HTTP/1.1\r\n") is Stage.READY  # pipelined


def test_a_length_the_parser_must_refuse_goes_to_it_at_once() -> None:
    assert stage(POST + b"Content-Length: 1x\r\n\r\n") is Stage.PARSER
    assert stage(POST + b"Content-Length: -1\r\n\r\n") is Stage.PARSER
    assert stage(POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n") is Stage.PARSER
    chunked_and_length = b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    assert stage(POST + chunked_and_length) is Stage.PARSER
    assert stage(POST + b"Transfer-Encoding: gzip\r\n\r\n") is Stage.PARSER


def test_a_body_over_the_limit_goes_to_the_parser_unread() -> None:
    # The app answers 413 without reading it: no reason to buffer a declared gigabyte.
    assert stage(POST + b"Content-Length: 1001\r\n\r\n") is Stage.PARSER
    assert stage(POST + b"Content-Length: 1000\r\n\r\n") is Stage.BODY


def test_chunks_are_due_until_the_last_one_and_its_trailers() -> None:
    head = POST + b"Transfer-Encoding: chunked\r\n\r\n"
    assert stage(head) is Stage.BODY
    assert stage(head + b"5\r\nhel") is Stage.BODY
    assert stage(head + b"5\r\nhello\r\n") is Stage.BODY
    assert stage(head + b"5;ext=1\r\nhello\r\n0\r\n") is Stage.BODY
    assert stage(head + b"5\r\nhello\r\n0\r\n\r\n") is Stage.READY
    assert stage(head + b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n") is Stage.BODY
    assert stage(head + b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n") is Stage.READY


def test_malformed_or_oversized_chunks_go_to_the_parser() -> None:
    head = POST + b"Transfer-Encoding: chunked\r\n\r\n"
    assert stage(head + b"zz\r\n") is Stage.PARSER
    assert stage(head + b"5\r\nhelloXX") is Stage.PARSER
    assert stage(head + b"3e9\r\n") is Stage.PARSER  # 1001 bytes > LIMIT
    assert stage(head + b"1" * 2000) is Stage.PARSER  # a size line that never ends


def test_expect_continue_is_reported_while_the_body_is_due() -> None:
    head = POST + b"Content-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    assert progress(head, LIMIT).expects_continue
    assert not progress(head + b"abcd", LIMIT).expects_continue
    assert not progress(POST + b"Content-Length: 4\r\n\r\n", LIMIT).expects_continue
