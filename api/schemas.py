"""Requests to domain objects, through the models of `api.contract`, and the JSON of a
recognition. Views call these; the rules themselves live in `api.contract`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from api.contract.drawing import check_drawing
from api.contract.parsing import Parser
from api.contract.png import validate_png
from api.contract.requests import (
    GuessRequest,
    MoveRequest,
    PngQuery,
    RecognitionRequest,
    ReviewDecision,
    ReviewListQuery,
)
from api.png_limits import refuse_costly_png
from core.settings import Settings
from core.tasks import result_document
from db.models import InputFormat, Recognition, RecognitionStatus
from db.recognitions import ConsentGrant, NewRecognition

_RECOGNITION: Parser[RecognitionRequest] = Parser(RecognitionRequest)
_GUESS: Parser[GuessRequest] = Parser(GuessRequest)
_PNG_QUERY: Parser[PngQuery] = Parser(PngQuery)
_DECISION: Parser[Any] = Parser(ReviewDecision)
_MOVE: Parser[MoveRequest] = Parser(MoveRequest)
_REVIEW_LIST: Parser[ReviewListQuery] = Parser(ReviewListQuery)


def parse_json_recognition(
    data: bytes, args: dict[str, str], settings: Settings, client_key_id: str
) -> NewRecognition:
    # The query's word and player_id are for PNG bodies; checked here too, so that one
    # operation has one rule for its parameters.
    _PNG_QUERY.python(args)
    body = _RECOGNITION.json(data)
    check = check_drawing(body.drawing, settings)
    consent = body.consent
    return NewRecognition(
        input_format=check.input_format,
        payload=body.drawing,
        word=body.word,
        player_id=body.player_id,
        consent=None
        if consent is None
        else ConsentGrant(version=consent.version, store=consent.store, train=consent.train),
        client_key_id=client_key_id,
    )


def parse_json_guess(data: bytes, settings: Settings) -> list[Any]:
    """The strokes drawn so far, of a live guess's body."""
    drawing = _GUESS.json(data).drawing
    check_drawing(drawing, settings)
    return drawing


def parse_png_recognition(data: bytes, args: dict[str, str], client_key_id: str) -> NewRecognition:
    """A PNG body, as the seed's mobile client sent; `word` and `player_id` come in the query."""
    query = _PNG_QUERY.python(args)
    validate_png(data)
    refuse_costly_png(data)
    return NewRecognition(
        input_format=InputFormat.png,
        payload_png=data,
        word=query.word,
        player_id=query.player_id,
        client_key_id=client_key_id,
    )


def parse_review_decision(data: bytes) -> tuple[str, str | None, bool]:
    """{"label": "cat"} (with "new_word": true to propose it) or {"discard": true}:
    returns (action, label, new_word)."""
    decision = _DECISION.json(data)
    label = getattr(decision, "label", None)
    if label is None:
        return "discard", None, False
    return "label", label, bool(getattr(decision, "new_word", False))


def parse_move_reason(data: bytes) -> str:
    """The optional {"reason": "..."} of a promote or rollback; an empty body means none."""
    return _MOVE.json(data).reason if data.strip() else ""


def parse_review_list(args: dict[str, str]) -> ReviewListQuery:
    return _REVIEW_LIST.python(args)


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
    """The JSON of a recognition (`api.contract.responses.Recognition`): what the API
    recorded plus what a worker made of it (`result`: status, finished_at, prediction,
    model_version, timings, stored, error)."""
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
