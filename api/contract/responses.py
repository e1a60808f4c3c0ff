"""Response bodies, declared for the document. Views build them as plain dicts (the hot
path stays cheap); the schemathesis test checks every answer against these models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime as Timestamp
from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ErrorBody(Answer):
    code: str = Field(description="stable, machine-readable: invalid_request, not_found, …")
    message: str = Field(description="for people; names the field and the rule broken")
    details: dict[str, Any] = Field(description="e.g. field, reason, limit, allowed")


class Error(Answer):
    """Every error: `{"error": {"code", "message", "details"}}`."""

    error: ErrorBody


class Guess(Answer):
    label: str
    confidence: float


class Prediction(Answer):
    label: str
    confidence: float
    top: list[Guess] = Field(max_length=3, description="best first")


class Recognition(Answer):
    id: str = Field(json_schema_extra={"format": "uuid"})
    status: Literal["queued", "running", "done", "failed"]
    word: str | None
    player_id: str | None
    created_at: Timestamp | None
    finished_at: Timestamp | None
    prediction: Prediction | None
    model_version: int | None
    timings: dict[str, float] | None
    stored: bool = Field(
        description="kept, with the player's consent to store: the strokes go to object "
        "storage just after the answer"
    )
    error: str | None = Field(default=None, description="why it failed (failed only)")


class LiveGuesses(Answer):
    guesses: list[Guess] = Field(max_length=3, description="best first")
    model_version: int
    timings: dict[str, float]


class Words(Answer):
    words: list[str]
    model_version: int | None


class ModelVersion(Answer):
    version: int
    aliases: list[str]
    classes: list[str]
    metrics: dict[str, Any]
    parent: int | None
    created_at: Timestamp
    architecture: str
    source: str
    checksum: str = Field(description="sha256 of the weights")
    dataset_manifest: dict[str, Any] | None = Field(
        default=None, description="the data it was trained on (single version only)"
    )


class ModelList(Answer):
    versions: list[ModelVersion] = Field(description="every version, newest first")
    production: int | None


class AliasMove(Answer):
    id: int
    alias: str
    from_: int | None = Field(alias="from")
    to: int
    actor: str = Field(description="cli:<user>, admin:<token id>, flow:…")
    reason: str
    moved_at: Timestamp


class AliasHistory(Answer):
    alias: str
    history: list[AliasMove] = Field(description="newest first")


class MoveResult(Answer):
    action: Literal["promote", "rollback"]
    alias: str
    from_: int | None = Field(alias="from")
    to: int
    moved: bool = Field(description="false when the version already was in production")
    move: AliasMove | None
    model: ModelVersion


class Review(Answer):
    recognition_id: str = Field(json_schema_extra={"format": "uuid"})
    review_id: int
    word: str | None = Field(description="the prompt shown")
    prediction: Prediction | None = Field(
        description="the model's guess when the doodle was recognised"
    )
    model_version: int | None
    reason: str = Field(
        description="why it was queued (near_empty, scribble, model_disagrees: …), or "
        "spot_check for a doodle a reviewer took up unqueued"
    )
    status: Literal["pending", "resolved"]
    created_at: Timestamp
    resolved_at: Timestamp | None
    resolved_by: str | None = Field(description="admin:<token id>")
    decision: Literal["label", "discard"] | None
    label: str | None = Field(description="the reviewer's label")
    png_key: str | None = Field(description="object key of the PNG")
    drawing_url: str | None = Field(description="where to see it")


class ReviewPage(Answer):
    status: Literal["pending", "resolved"]
    reviews: list[Review]
    next: str | None = Field(description="pass as `after` for the next page; null on the last")


class ConsentGrant(Answer):
    version: str = Field(description="version of the consent text accepted")
    store: bool
    train: bool
    granted_at: Timestamp
    withdrawn_at: Timestamp | None = Field(description="when it was withdrawn or replaced")


class PlayerConsent(Answer):
    in_force: ConsentGrant | None = Field(
        description="the grant in force; null: nothing of the player is stored or trained on"
    )
    history: list[ConsentGrant] = Field(description="every grant, oldest first")


class PlayerExport(Answer):
    """Everything held about a player (Art. 15 and 20), one JSON document, streamed."""

    format: Literal["doodle-player-export/1"]
    exported_at: Timestamp
    player: dict[str, Any] = Field(description="id, created_at")
    consents: PlayerConsent
    recognitions: list[dict[str, Any]] = Field(
        description="oldest first: id, created_at, word, input_format, status, finished_at, "
        "error, prediction, model_version, timings, consent (store, train), stored_at, "
        "drawing (the strokes), png_base64, raster_28x28_base64 (the 28x28 image the model "
        "saw)"
    )
    labels: list[dict[str, Any]] = Field(
        description="labels of the player's doodles: recognition_id, label, source, actor, "
        "created_at"
    )
    reviews: list[dict[str, Any]] = Field(
        description="reviews of the player's doodles: recognition_id, reason, status, "
        "created_at, resolved_at, resolved_by"
    )
    model_versions_trained_on: list[dict[str, Any]] = Field(
        description="model_version, recognition_id: which versions were trained on which doodle"
    )


class NewPlayer(Answer):
    player_id: str = Field(description="the player's id, chosen by the server (unguessable)")
    player_secret: str = Field(
        description="the secret that proves a request is the player's (X-Player-Secret): "
        "with recognitions naming them, and on /v1/players/{player_id}/…. Shown once "
        "(again only to a retry with the same Idempotency-Key); the API keeps only its hash"
    )


class PlayerSecret(Answer):
    player_secret: str = Field(
        description="the player's new secret (X-Player-Secret); the old one no longer works. "
        "Shown once"
    )


class ErasureReceipt(Answer):
    deleted: dict[str, int] = Field(
        description="how many of each kind were removed: recognitions, labels, reviews, "
        "consents, players, segment_lines (doodles cut from shared segments), "
        "objects_deleted, results and queued_messages (Redis), audit_rows_redacted, …"
    )
    model_versions: list[int] = Field(
        description="the model versions that had been trained on the player's doodles"
    )
    replaced_by_version: int | None = Field(
        description="the version that replaced them in service (set by the next flywheel)"
    )


class Erasure(Answer):
    """A player's erasure: its status and, once done, its receipt. No personal data."""

    id: str = Field(json_schema_extra={"format": "uuid"})
    status: Literal["pending", "done"]
    player_ref: str = Field(description="HMAC-SHA256 of the player id with the server's key")
    requested_by: str = Field(description='"player", or "admin:<token id>"')
    requested_at: Timestamp
    completed_at: Timestamp | None
    attempts: int | None = Field(default=None, description="pending only")
    last_error: str | None = Field(default=None, description="pending only: the last failure")
    receipt: ErasureReceipt | None = Field(default=None, description="done only")
