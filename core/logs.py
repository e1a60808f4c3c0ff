"""Log lines an operator can use: readable text by default, one JSON object a line with
`DOODLE_LOG_FORMAT=json`, and the request id of the doodle a line is about.

The API takes a request's id from `X-Request-ID` (or makes one) and sets it for the
request's thread; it travels with the task message, and the worker sets it around the
lines it logs about that doodle. No line carries a secret, a player id, or strokes:
`db.session` hides SQL parameters, and callers log ids of rows, never their contents.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

from core.settings import ConfigError

FORMATS = ("text", "json")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# What a client may send as its X-Request-ID; anything else is replaced, not logged.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def accept_request_id(sent: str | None) -> str:
    """The client's request id if it is a plausible one, else a new one."""
    if sent and _VALID_REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        if rid:
            return f"{line} [request_id={rid}]"
        rids = getattr(record, "request_ids", None)
        return f"{line} [request_ids={','.join(rids)}]" if rids else line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        rids = getattr(record, "request_ids", None)
        if rids:
            entry["request_ids"] = rids  # a line about a batch of doodles
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def redact_url(url: str) -> str:
    """`url` fit to print: its password (an S3 secret, a database password) as `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def log_format() -> str:
    fmt = os.environ.get("DOODLE_LOG_FORMAT", "text").strip().lower() or "text"
    if fmt not in FORMATS:
        raise ConfigError(f"DOODLE_LOG_FORMAT must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def configure_logging(fmt: str | None = None, level: str | None = None) -> None:
    """The root logger of a process: every handler gets the request id filter."""
    fmt = fmt or log_format()
    handler = logging.StreamHandler()
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime  # the "Z" in its timestamps
    else:
        formatter = _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("LOG_LEVEL", "INFO")).upper())
    # One line per HTTP call to the Prefect API drowns everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
