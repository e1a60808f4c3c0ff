"""Every limit and format the API enforces, named once: the validators and /openapi.json
both read these, so the document cannot state a different rule than the code applies.

Drawing limits that an operator may change (strokes, points, body size) live in
`core.settings.Settings`; the document is generated from the app's settings.
"""

from __future__ import annotations

from core.settings import MAX_PNG_SIDE
from db.labels import MAX_LABEL_LENGTH

# Sized to the columns they land in (recognitions.word, consents.version, players.id).
MAX_WORD_LENGTH = 64
MAX_CONSENT_VERSION_LENGTH = 32
# Rust's regex (pydantic) and ECMA (the document) both end `$` at the end of the text.
PLAYER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"
# Text a person typed: no control characters (Postgres refuses NUL; the rest is junk).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# Free text (a reason): anything Postgres can store, line breaks included.
NO_NUL_PATTERN = r"^[^\x00]*$"

# A PNG is refused before it is decoded when larger than this (decompression bombs).
MAX_PNG_PIXELS = MAX_PNG_SIDE * MAX_PNG_SIDE

# Simplified Quick, Draw! drawings fit in 0..255; anything beyond is screen pixels (raw).
SIMPLIFIED_MAX = 255

LABEL_LENGTH = MAX_LABEL_LENGTH
MAX_REASON_LENGTH = 1000
ALIAS_NAME_LENGTH = 32
# Model version ids fit a Postgres integer; the route refuses longer numbers as unknown.
MAX_VERSION_ID = 999_999_999

DEFAULT_PAGE = 50
MAX_PAGE = 200
# The review list's cursor: unpadded URL-safe base64, as `db.reviews` makes it.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"
