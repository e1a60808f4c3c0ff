"""Recording a doodle (the API side): the recognition row, its player and the consent.

The recognition path is hot, so `insert_recognition` is one SQL statement; what the
workers do to a recorded doodle (claim, finish, store its object, sweep) is
`db.processing`. Every function takes a Connection (or Session) and leaves committing
to the caller.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db.models import InputFormat, Recognition
from db.players import issue_secret


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


@dataclass(frozen=True)
class Accepted:
    """What the API needs of a freshly recorded doodle to answer for it."""

    id: uuid.UUID
    created_at: dt.datetime
    consent_store: bool
    # The secret of a player this doodle made: handed out once, only its hash is kept.
    player_secret: str | None = None


# One round trip: the player (if new, with the hash of the secret issued to them), the
# consent grant (unless the one in force says the same; a different one replaces it), and
# the doodle with a snapshot of the consent's scopes.
_INSERT = text(
    """
WITH player AS (
    INSERT INTO players (id, secret_hash)
    SELECT CAST(:player_id AS varchar), CAST(:secret_hash AS varchar)
    WHERE CAST(:player_id AS varchar) IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING id
),
in_force AS (
    SELECT id, version, store, train FROM consents
    WHERE player_id = CAST(:player_id AS varchar) AND withdrawn_at IS NULL
    ORDER BY granted_at DESC, id DESC
    LIMIT 1
),
same AS (
    SELECT id, store, train FROM in_force
    WHERE version = CAST(:version AS varchar)
      AND store = CAST(:store AS boolean) AND train = CAST(:train AS boolean)
),
granted AS (
    INSERT INTO consents (player_id, version, store, train)
    SELECT :player_id, :version, :store, :train
    WHERE CAST(:version AS varchar) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM same)
    RETURNING id, store, train
),
replaced AS (
    UPDATE consents SET withdrawn_at = now()
    WHERE player_id = CAST(:player_id AS varchar) AND withdrawn_at IS NULL
      AND CAST(:version AS varchar) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM same)
),
consent AS (
    SELECT id, store, train FROM same
    UNION ALL
    SELECT id, store, train FROM granted
)
INSERT INTO recognitions (
    id, origin, player_id, consent_id, consent_store, consent_train, word, client_key_id,
    input_format, payload, payload_png, status, attempts
)
SELECT
    :id, 'game', :player_id, consent.id, coalesce(consent.store, false),
    coalesce(consent.train, false), :word, :client_key_id,
    CAST(:input_format AS input_format), :payload, :payload_png, 'queued', 0
FROM (SELECT 1) AS one LEFT JOIN consent ON true
RETURNING created_at, consent_store, EXISTS (SELECT 1 FROM player) AS new_player
"""
).bindparams(bindparam("payload", type_=JSONB(none_as_null=True)))


def insert_recognition(conn: Connection | Session, new: NewRecognition) -> Accepted:
    """Record a doodle as queued, with its player and a snapshot of the consent in force."""
    recognition_id = uuid.uuid4()
    grant = new.consent
    issued = issue_secret() if new.player_id is not None else None
    row = conn.execute(
        _INSERT,
        {
            "id": recognition_id,
            "player_id": new.player_id,
            "secret_hash": issued.hash if issued else None,
            "version": grant.version if grant else None,
            "store": grant.store if grant else None,
            "train": grant.train if grant else None,
            "word": new.word,
            "client_key_id": new.client_key_id,
            "input_format": new.input_format.value,
            "payload": new.payload,
            "payload_png": new.payload_png,
        },
    ).one()
    secret = issued.secret if issued and row.new_player else None
    return Accepted(recognition_id, row.created_at, row.consent_store, secret)


def create_recognition(s: Session, new: NewRecognition) -> Recognition:
    """`insert_recognition`, returning the ORM row (tests and tools)."""
    accepted = insert_recognition(s, new)
    row = s.get(Recognition, accepted.id)
    assert row is not None
    return row


def get_recognition(s: Session, recognition_id: uuid.UUID) -> Recognition | None:
    return s.get(Recognition, recognition_id)
