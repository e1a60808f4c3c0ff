"""A PNG body is refused from its header when decoding it would cost too much (core.png):
413 naming the limit, before it is recorded, so no worker ever decodes it. Runs after
api.contract.png.validate_png, which walked the chunks already."""

from __future__ import annotations

from api.errors import ApiError, InvalidRequest
from api.resources import resources
from core.png import PngError, PngLimits, PngTooCostly, check_limits, read_header


class ImageTooLarge(ApiError):
    """More pixels or bits a sample than DOODLE_PNG_MAX_PIXELS / _MAX_BIT_DEPTH allow."""

    status = 413
    code = "image_too_large"


def refuse_costly_png(data: bytes) -> None:
    """ImageTooLarge over the app's PNG limits; InvalidRequest (400) with a plain reason
    for a body that is not a whole PNG."""
    try:
        check_limits(read_header(data), PngLimits.of(resources().settings))
    except PngTooCostly as exc:
        raise ImageTooLarge(exc.message, exc.details) from None
    except PngError as exc:
        raise InvalidRequest(exc.message, {"reason": exc.message}) from None
