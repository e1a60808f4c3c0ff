"""One place that maps every exception to one JSON shape:
`{"error": {"code", "message", "details"}}`. Views raise; they never build error JSON.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify
from gunicorn.http.errors import NoMoreData, ParseException
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from core.storage import StorageUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequest(ApiError):
    status = 400
    code = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Unprocessable(ApiError):
    """Well-formed, but the domain refuses it (a label that is not a known word)."""

    status = 422
    code = "unprocessable"


# What the server raises while a view, or Werkzeug's form parser, reads a body whose framing
# is broken: a bad chunk size or extension, the connection closed mid-chunk or before
# Content-Length bytes came. The client's fault, whoever reads the body.
BODY_FRAMING_ERRORS: tuple[type[Exception], ...] = (ParseException, NoMoreData)


def malformed_body(exc: Exception | None) -> InvalidRequest:
    """`exc`: the server's complaint, if it had one (else: fewer bytes than announced)."""
    reason = "ShorterThanContentLength" if exc is None else type(exc).__name__
    return InvalidRequest(
        "malformed request body: its framing is broken or it ended early",
        {"field": "body", "reason": reason},
    )


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(ApiError):
    status = 429
    code = "too_many_requests"
    retry_after = 1


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"
    retry_after = 2


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any],
    retry_after: int | None = None,
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    return response


def _http_code(exc: HTTPException) -> str:
    name = (exc.name or "error").lower()
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.retry_after)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        details: dict[str, Any] = {}
        if status == 413:
            details["max_bytes"] = app.config.get("MAX_CONTENT_LENGTH")
        allowed = sorted(getattr(exc, "valid_methods", None) or [])
        if status == 405 and allowed:
            details["allowed"] = allowed
        response = error_response(status, _http_code(exc), exc.description or exc.name, details)
        if status == 405:
            response.headers["Allow"] = ", ".join(allowed)  # RFC 9110: a 405 must send it
        return response

    @app.errorhandler(ParseException)
    @app.errorhandler(NoMoreData)
    def _malformed_body(exc: Exception) -> Response:
        return _api_error(malformed_body(exc))

    @app.after_request
    def _relative_redirects(response: Response) -> Response:
        # Routing's own redirects (/admin -> /admin/, merged slashes) never reach a handler
        # and are built from the Host header: keep only the path, never the client's host.
        location = response.headers.get("Location")
        if location and response.status_code in range(300, 400):
            parts = urlsplit(location)
            if parts.scheme or parts.netloc:
                # One leading slash: "//host/..." would name a host again.
                path = "/" + parts.path.lstrip("/")
                response.headers["Location"] = path + (f"?{parts.query}" if parts.query else "")
        return response

    # Postgres unreachable, gone mid-statement, or over a timeout (db.session): silent past
    # the reply deadline (DatabaseSilent), statement_timeout (QueryCanceled), lock_timeout
    # (LockNotAvailable), connect_timeout (ConnectionTimeout); all OperationalErrors.
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)  # every pooled connection is stuck waiting on it
    @app.errorhandler(RedisError)
    @app.errorhandler(StorageUnavailable)
    def _dependency_down(exc: Exception) -> Response:
        # An outage, not a bug: the client may try again; nothing was accepted. The driver's
        # error names which wait ran out (its message may name hosts: left out).
        cause = getattr(exc, "orig", None) or exc
        log.warning("dependency unavailable: %s (%s)", type(exc).__name__, type(cause).__name__)
        unavailable = ServiceUnavailable("a backing service is unavailable; try again shortly")
        return _api_error(unavailable)

    @app.errorhandler(DataError)
    def _unstorable(exc: DataError) -> Response:
        # A value Postgres refuses (out of range, NUL, too long) that validation let through:
        # the client's input, so a 400; logged without its parameters (players' data).
        log.warning("value refused by the database: %s", type(exc.orig).__name__)
        return _api_error(InvalidRequest("a value in the request is out of range"))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error", {})
