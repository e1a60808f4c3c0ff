"""The one place a request body becomes a validated model, or a 400/413 naming the field."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from flask import Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import BODY_FRAMING_ERRORS, InvalidRequest, malformed_body

T = TypeVar("T")

_CHUNK = 64 * 1024


def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, never more than `max_bytes`: a longer one is a 413, even when sent chunked;
    a body whose framing is broken (a bad chunk size, the connection closed mid-chunk or
    before Content-Length bytes came) is a 400, never a 500.

    With a Content-Length, Werkzeug has already refused a body over the limit. Without one
    (chunked), Werkzeug's stream stops quietly at the limit, so a 2 MB body would look like
    truncated JSON: read from the server's stream ourselves, at most one byte past it.
    """
    announced = request.content_length
    try:
        if announced is None:
            return _read_unsized(request.environ, max_bytes)
        data = request.get_data()
    except BODY_FRAMING_ERRORS as exc:
        raise malformed_body(exc) from None
    if len(data) < announced:
        # The connection closed early; what came may still parse (`{}` of a longer body).
        raise malformed_body(None)
    return data


def _read_unsized(environ: dict[str, Any], max_bytes: int) -> bytes:
    if "wsgi.input_terminated" not in environ:  # the server cannot tell where it ends
        return b""
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = stream.read(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise RequestEntityTooLarge()
    return b"".join(chunks)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _invalid(exc: ValidationError, models: tuple[str, ...] = ()) -> InvalidRequest:
    """The first error, as a message naming the field and the rule."""
    error = exc.errors(include_url=False, include_input=False)[0]
    kind = error["type"]
    # A union's branch name (LabelDecision, ...) is not part of the body's path.
    loc = tuple(part for part in error["loc"] if part not in models)
    field = str((error.get("ctx") or {}).get("field") or _where(loc) or "body")
    if kind == "json_invalid":
        return InvalidRequest("request body is not valid JSON", {"reason": error["msg"]})
    if kind in {"model_type", "model_attributes_type", "dict_type"} and not loc:
        return InvalidRequest("request body must be a JSON object", {"field": "body"})
    if kind == "extra_forbidden":
        return InvalidRequest(f"unknown field {field}", {"field": field, "reason": error["msg"]})
    if kind == "missing":
        return InvalidRequest(f"{field} is required", {"field": field})
    return InvalidRequest(f"{field}: {error['msg']}", {"field": field, "reason": error["msg"]})


class Parser(Generic[T]):
    """Validates JSON bytes or Python data against one model (or a union of models)."""

    def __init__(self, model: Any) -> None:
        self.adapter: TypeAdapter[T] = TypeAdapter(model)
        self.branches = tuple(m.__name__ for m in _union_members(model))

    def json(self, data: bytes) -> T:
        try:
            return self.adapter.validate_json(data)
        except ValidationError as exc:
            raise _invalid(exc, self.branches) from None

    def python(self, data: Any) -> T:
        try:
            return self.adapter.validate_python(data)
        except ValidationError as exc:
            raise _invalid(exc, self.branches) from None


def _union_members(model: Any) -> tuple[Any, ...]:
    """The models of `A | B` (possibly inside Annotated), for cleaner error locations."""
    inner = getattr(model, "__origin__", None)
    if getattr(model, "__metadata__", None) is not None and inner is not None:
        model = inner
    members = [getattr(m, "__origin__", m) for m in getattr(model, "__args__", ())]
    return tuple(m for m in members if isinstance(m, type) and issubclass(m, BaseModel))
