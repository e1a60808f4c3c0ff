"""Log formats: the request id on every line that has one, JSON when asked."""

from __future__ import annotations

import json
import logging

import pytest

from core.logs import accept_request_id, configure_logging, reset_request_id, set_request_id


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_request_id(capsys, restore_root_logger):
    configure_logging("json", "INFO")
    log = logging.getLogger("doodle.test")
    token = set_request_id("req-1")  # as the API does around a request
    log.info("inside %s", "it")
    reset_request_id(token)
    log.warning("outside")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["message"], e.get("request_id")) for e in lines] == [
        ("inside it", "req-1"),
        ("outside", None),
        ("failed", None),
    ]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "doodle.test"
    assert lines[0]["time"].endswith("Z")
    assert "ValueError: boom" in lines[2]["exception"]


def test_text_lines_name_the_request(capsys, restore_root_logger):
    configure_logging("text", "INFO")
    log = logging.getLogger("doodle.test")
    token = set_request_id("req-2")
    log.info("hello")
    reset_request_id(token)
    log.info("bye", extra={"request_id": "req-3"})
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("doodle.test: hello [request_id=req-2]")
    assert err[1].endswith("doodle.test: bye [request_id=req-3]")


def test_only_plausible_request_ids_are_kept():
    assert accept_request_id("abc-1.2:3_x") == "abc-1.2:3_x"
    for odd in ("", None, "a b", "x" * 65, "ü"):
        made = accept_request_id(odd)
        assert made != odd and len(made) == 32


def test_an_unknown_format_is_refused(monkeypatch):
    monkeypatch.setenv("DOODLE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="DOODLE_LOG_FORMAT"):
        configure_logging()


def test_urls_are_printed_without_their_password():
    from core.logs import redact_url

    assert redact_url("s3://KEY:s3cr3t@minio:9000/doodles?secure=true") == (
        "s3://KEY:***@minio:9000/doodles?secure=true"
    )
    assert redact_url("postgresql://root:pw@db:5432/app") == "postgresql://root:***@db:5432/app"
    assert redact_url("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact_url("file:///var/objects") == "file:///var/objects"
