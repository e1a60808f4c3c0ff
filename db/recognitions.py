"""Queries and state changes of recognitions (the doodles) and the players' consent.

Every function takes a Session and leaves committing to the caller.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Consent, InputFormat, Player, Recognition, RecognitionStatus


@dataclass(frozen=True)
class ConsentGrant:
    version: str
    store: bool
    train: bool


@dataclass(frozen=True)
class NewRecognition:
    input_format: InputFormat
    payload: Any | None = None  # strokes, for JSON bodies
    payload_png: bytes | None = None  # the image, for PNG bodies
    word: str | None = None
    player_id: str | None = None
    consent: ConsentGrant | None = None
    client_key_id: str | None = None


def _current_consent(s: Session, player_id: str) -> Consent | None:
    return s.scalars(
        select(Consent)
        .where(Consent.player_id == player_id, Consent.withdrawn_at.is_(None))
        .order_by(Consent.granted_at.desc(), Consent.id.desc())
        .limit(1)
    ).first()


def _record_consent(s: Session, player_id: str, grant: ConsentGrant) -> Consent:
    """Reuse the consent in force when it says the same; otherwise record the new grant."""
    current = _current_consent(s, player_id)
    if current and (current.version, current.store, current.train) == (
        grant.version,
        grant.store,
        grant.train,
    ):
        return current
    consent = Consent(
        player_id=player_id, version=grant.version, store=grant.store, train=grant.train
    )
    s.add(consent)
    s.flush()
    return consent


def create_recognition(s: Session, new: NewRecognition) -> Recognition:
    """Record a doodle as queued, with its player and a snapshot of the consent in force."""
    consent: Consent | None = None
    if new.player_id is not None:
        s.execute(insert(Player).values(id=new.player_id).on_conflict_do_nothing())
        if new.consent is not None:
            consent = _record_consent(s, new.player_id, new.consent)
    recognition = Recognition(
        id=uuid.uuid4(),
        player_id=new.player_id,
        consent_id=consent.id if consent else None,
        consent_store=bool(consent and consent.store),
        consent_train=bool(consent and consent.train),
        word=new.word,
        client_key_id=new.client_key_id,
        input_format=new.input_format,
        payload=new.payload,
        payload_png=new.payload_png,
        status=RecognitionStatus.queued,
        attempts=0,
    )
    s.add(recognition)
    s.flush()
    return recognition


def get_recognition(s: Session, recognition_id: uuid.UUID) -> Recognition | None:
    return s.get(Recognition, recognition_id)


def lock_for_processing(s: Session, recognition_id: uuid.UUID) -> Recognition | None:
    """Lock the row so a duplicate delivery waits, then sees it done (idempotent tasks)."""
    return s.scalars(
        select(Recognition).where(Recognition.id == recognition_id).with_for_update()
    ).first()


@dataclass(frozen=True)
class Outcome:
    label: str
    confidence: float
    top: list[dict[str, Any]]
    model_version_id: int
    timings: dict[str, float]
    strokes_key: str | None
    png_key: str | None
    # The 28x28 uint8 raster (784 bytes); only with consent to store, else None.
    bitmap: bytes | None = None


def mark_done(s: Session, recognition: Recognition, outcome: Outcome) -> None:
    recognition.status = RecognitionStatus.done
    recognition.label = outcome.label
    recognition.confidence = outcome.confidence
    recognition.top = outcome.top
    recognition.model_version_id = outcome.model_version_id
    recognition.timings = outcome.timings
    recognition.strokes_key = outcome.strokes_key
    recognition.png_key = outcome.png_key
    recognition.bitmap = outcome.bitmap
    recognition.finished_at = dt.datetime.now(dt.UTC)
    recognition.error = None
    # The doodle itself stays only in object storage, and only with consent to store.
    recognition.payload = None
    recognition.payload_png = None


def mark_failed(s: Session, recognition: Recognition, reason: str) -> None:
    recognition.status = RecognitionStatus.failed
    recognition.error = reason[:2000]
    recognition.finished_at = dt.datetime.now(dt.UTC)
    recognition.payload = None
    recognition.payload_png = None


def claim_stale(s: Session, older_than: dt.datetime, limit: int = 500) -> list[uuid.UUID]:
    """Unfinished work not enqueued since `older_than`: marks it enqueued now and returns it.

    Rows are locked with SKIP LOCKED so two sweepers never pick the same doodle, and a
    row a worker is processing right now is left alone.
    """
    ids = list(
        s.scalars(
            select(Recognition.id)
            .where(
                Recognition.status.in_([RecognitionStatus.queued, RecognitionStatus.running]),
                Recognition.enqueued_at < older_than,
            )
            .order_by(Recognition.enqueued_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        s.execute(update(Recognition).where(Recognition.id.in_(ids)).values(enqueued_at=func.now()))
    return ids


def fail_exhausted(s: Session, max_attempts: int) -> int:
    """Give up on doodles that crashed a worker too often (poison input)."""
    result = s.execute(
        update(Recognition)
        .where(
            Recognition.status.in_([RecognitionStatus.queued, RecognitionStatus.running]),
            Recognition.attempts >= max_attempts,
        )
        .values(
            status=RecognitionStatus.failed,
            error=f"gave up after {max_attempts} attempts",
            finished_at=dt.datetime.now(dt.UTC),
            payload=None,
            payload_png=None,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
