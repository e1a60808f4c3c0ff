"""The Idempotency-Key header of the POST routes that create things (recognitions,
players): a client retrying with the same key gets the answer for what its first request
made, and nothing is recorded twice, whichever API process the retry reaches.

The key is written in the same statement as the row it names (db.idempotency); this module
reads the header, fingerprints the request and judges a reuse.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Response, request

from api.errors import InvalidRequest, Unprocessable
from core.settings import Settings
from db.idempotency import KeyClaim, StoredKey, fingerprint

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII; inner spaces allowed, not at the ends (HTTP would strip them).
KEY_PATTERN = rf"^[\x21-\x7e](?:[\x20-\x7e]{{0,{MAX_KEY_LENGTH - 2}}}[\x21-\x7e])?$"
_KEY = re.compile(KEY_PATTERN)


def requested_claim(settings: Settings, operation: str, body: bytes) -> KeyClaim | None:
    """The request's key (None without the header), with the fingerprint of what it asks:
    the operation, the content type, the query and the body. 400 for a malformed key."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise InvalidRequest(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            {"field": HEADER},
        )
    query = urlencode(sorted(request.args.items(multi=True)))
    parts = (operation.encode(), request.mimetype.encode(), query.encode(), body)
    return KeyClaim(key, fingerprint(parts), settings.idempotency_ttl_hours)


def check_same_request(stored: StoredKey, claim: KeyClaim) -> None:
    """A key reused for another request (another body, query or route) is refused: it
    would otherwise answer for something the client did not ask this time."""
    if stored.fingerprint != claim.fingerprint:
        raise Unprocessable(
            f"this {HEADER} was used for a different request; send a new key for a new "
            "request, or the same request to retry it",
            {"field": HEADER, "reason": "key_reused"},
        )


def mark_replayed(response: Response) -> Response:
    response.headers[REPLAYED] = "true"
    return response
