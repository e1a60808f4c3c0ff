"""Request parsing and validation, and the JSON shape of a recognition.

Pure Python on purpose: the API validates strokes without numpy or torch.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from api.errors import InvalidRequest
from core.settings import MAX_PNG_SIDE, Settings
from db.models import InputFormat, Recognition, RecognitionStatus
from db.recognitions import ConsentGrant, NewRecognition
from workers.signatures import result_document

PLAYER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")
MAX_WORD_LENGTH = 64
MAX_CONSENT_VERSION_LENGTH = 32
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECOGNITION_FIELDS = {"drawing", "word", "player_id", "consent"}
GUESS_FIELDS = {"drawing"}
CONSENT_FIELDS = {"store", "train", "version"}


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json_body(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest("request body is not valid JSON", {"reason": str(exc)}) from exc


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class DrawingCheck:
    input_format: InputFormat
    strokes: int
    points: int


def validate_drawing(drawing: Any, settings: Settings) -> DrawingCheck:
    """Strokes in Quick, Draw! form: `[[x...], [y...]]` (simplified) or with `[t...]` (raw)."""
    if not isinstance(drawing, list) or not drawing:
        raise InvalidRequest("drawing must be a non-empty list of strokes", {"field": "drawing"})
    if len(drawing) > settings.max_strokes:
        raise InvalidRequest(
            f"drawing has {len(drawing)} strokes; at most {settings.max_strokes} are allowed",
            {"field": "drawing", "limit": settings.max_strokes},
        )
    arity: int | None = None
    points = 0
    distinct: set[tuple[float, float]] = set()
    limit = settings.max_coordinate
    for i, stroke in enumerate(drawing):
        where = {"field": f"drawing[{i}]"}
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            raise InvalidRequest(
                "each stroke must be [[x...], [y...]] or [[x...], [y...], [t...]]", where
            )
        if arity is None:
            arity = len(stroke)
        elif len(stroke) != arity:
            raise InvalidRequest(
                "all strokes must have the same form (with or without times)", where
            )
        rows = stroke
        if not all(isinstance(row, list) for row in rows):
            raise InvalidRequest("each stroke row must be a list of numbers", where)
        length = len(rows[0])
        if length == 0 or any(len(row) != length for row in rows):
            raise InvalidRequest("a stroke's rows must be non-empty and of equal length", where)
        points += length
        if points > settings.max_points:
            raise InvalidRequest(
                f"drawing has more than {settings.max_points} points",
                {"field": "drawing", "limit": settings.max_points},
            )
        for row in rows:
            for value in row:
                if not _is_number(value) or not math.isfinite(value) or abs(value) > limit:
                    raise InvalidRequest(
                        f"coordinates must be finite numbers within ±{limit:g}",
                        {**where, "value": repr(value)[:40]},
                    )
        if len(distinct) < 2:
            distinct.update(zip(rows[0], rows[1], strict=True))
    if len(distinct) < 2:
        raise InvalidRequest("drawing needs at least two distinct points", {"field": "drawing"})
    assert arity is not None
    raw = arity == 3 or _looks_raw(drawing)
    return DrawingCheck(InputFormat.raw if raw else InputFormat.simplified, len(drawing), points)


def _looks_raw(drawing: list) -> bool:
    """Simplified drawings are aligned to 0 and fit in 0..255; anything else is screen pixels."""
    xs = [x for stroke in drawing for x in stroke[0]]
    ys = [y for stroke in drawing for y in stroke[1]]
    return min(xs) != 0 or min(ys) != 0 or max(xs) > 255 or max(ys) > 255


def _optional_word(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_WORD_LENGTH:
        raise InvalidRequest(
            f"word must be a non-empty string of at most {MAX_WORD_LENGTH} characters",
            {"field": "word"},
        )
    return value.strip().lower()


def _optional_player_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not PLAYER_ID.match(value):
        raise InvalidRequest(
            "player_id must be 1-64 characters: letters, digits and _.:@-",
            {"field": "player_id"},
        )
    return value


def _optional_consent(value: Any, player_id: str | None) -> ConsentGrant | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("consent must be an object", {"field": "consent"})
    unknown = sorted(set(value) - CONSENT_FIELDS)
    if unknown:
        raise InvalidRequest("unknown consent fields", {"field": "consent", "unknown": unknown})
    store, train, version = value.get("store"), value.get("train"), value.get("version")
    if not isinstance(store, bool) or not isinstance(train, bool):
        raise InvalidRequest(
            "consent.store and consent.train must be booleans", {"field": "consent"}
        )
    if (
        not isinstance(version, str)
        or not version.strip()
        or len(version) > MAX_CONSENT_VERSION_LENGTH
    ):
        raise InvalidRequest(
            "consent.version must name the consent text the player accepted",
            {"field": "consent.version"},
        )
    if train and not store:
        raise InvalidRequest(
            "consent.train needs consent.store: a doodle that is not kept cannot train",
            {"field": "consent"},
        )
    if player_id is None:
        raise InvalidRequest(
            "consent needs a player_id, so the player can later withdraw it",
            {"field": "player_id"},
        )
    return ConsentGrant(version=version.strip(), store=store, train=train)


def _object_with_drawing(
    body: Any, fields: set[str], settings: Settings
) -> tuple[dict[str, Any], DrawingCheck]:
    """A JSON object of known fields with a valid `drawing`, and what the drawing is."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise InvalidRequest("unknown fields", {"unknown": unknown, "allowed": sorted(fields)})
    if "drawing" not in body:
        raise InvalidRequest("drawing is required", {"field": "drawing"})
    return body, validate_drawing(body["drawing"], settings)


def parse_json_guess(body: Any, settings: Settings) -> Any:
    """The strokes drawn so far, of a live guess's body."""
    return _object_with_drawing(body, GUESS_FIELDS, settings)[0]["drawing"]


def parse_json_recognition(body: Any, settings: Settings, client_key_id: str) -> NewRecognition:
    body, check = _object_with_drawing(body, RECOGNITION_FIELDS, settings)
    player_id = _optional_player_id(body.get("player_id"))
    return NewRecognition(
        input_format=check.input_format,
        payload=body["drawing"],
        word=_optional_word(body.get("word")),
        player_id=player_id,
        consent=_optional_consent(body.get("consent"), player_id),
        client_key_id=client_key_id,
    )


def validate_png(data: bytes) -> None:
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidRequest("body is not a PNG image", {"content_type": "image/png"})
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width > MAX_PNG_SIDE or height > MAX_PNG_SIDE:
                raise InvalidRequest(
                    f"image is {width}x{height}; at most {MAX_PNG_SIDE}x{MAX_PNG_SIDE} is allowed"
                )
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest("PNG image is corrupt", {"reason": str(exc)[:200]}) from exc


def parse_png_recognition(data: bytes, args: dict[str, str], client_key_id: str) -> NewRecognition:
    """A PNG body, as the seed's mobile client sent; `word` and `player_id` come in the query."""
    validate_png(data)
    return NewRecognition(
        input_format=InputFormat.png,
        payload_png=data,
        word=_optional_word(args.get("word")),
        player_id=_optional_player_id(args.get("player_id")),
        client_key_id=client_key_id,
    )


def recognition_json(row: Recognition) -> dict[str, Any]:
    """A recognition as read from its row (GET)."""
    result = result_document(
        status=row.status.value,
        finished_at=row.finished_at,
        label=row.label,
        confidence=row.confidence,
        top=row.top,
        model_version=row.model_version_id,
        timings=row.timings,
        # Kept in object storage (written just after the answer; `stored_at` says when).
        stored=row.status is RecognitionStatus.done and row.consent_store,
        error=row.error,
    )
    return recognition_document(row.id, row.word, row.player_id, row.created_at, result)


def recognition_document(
    recognition_id: uuid.UUID,
    word: str | None,
    player_id: str | None,
    created_at: dt.datetime | None,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The JSON of a recognition: what the API recorded plus what a worker made of it
    (`result`: status, finished_at, prediction, model_version, timings, stored, error)."""
    return {
        "id": str(recognition_id),
        "status": result.get("status"),
        "word": word,
        "player_id": player_id,
        "created_at": created_at.isoformat() if created_at else None,
        "finished_at": result.get("finished_at"),
        "prediction": result.get("prediction"),
        "model_version": result.get("model_version"),
        "timings": result.get("timings"),
        "stored": bool(result.get("stored")),
        **({"error": result["error"]} if result.get("error") else {}),
    }


QUEUED = {"status": "queued"}
