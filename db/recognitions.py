"""Recording a doodle (the API side): the recognition row, its consent and its key.

The recognition path is hot, so `insert_recognition` is one SQL statement (the player's
secret checked, the Idempotency-Key recorded, the consent and the doodle written); what the
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

from db.idempotency import KeyClaim, KeyTaken, claim_cte, claim_params
from db.models import InputFormat, Recognition
from db.players import hash_secret


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
    # The secret that proves the request is the player's (X-Player-Secret).
    player_secret: str | None = None
    consent: ConsentGrant | None = None
    client_key_id: str | None = None


@dataclass(frozen=True)
class Accepted:
    """What the API needs of a freshly recorded doodle to answer for it."""

    id: uuid.UUID
    created_at: dt.datetime
    consent_store: bool


class PlayerNotProven(Exception):
    """The doodle names a player without their secret (or the player is unknown): nothing
    was recorded, and the caller cannot tell which."""


# One round trip: the player, only with their secret (its hash compared here: a sha256 of
# a 256-bit secret leaks nothing through timing); the Idempotency-Key, taken only if free
# or expired; the consent grant (unless the one in force says the same; a different one
# replaces it); the doodle with a snapshot of the consent's scopes. With the player
# unproven or the key taken, nothing at all is written; the last SELECT says which.
_INSERT = text(
    """
WITH player AS (
    SELECT id FROM players
    WHERE id = CAST(:player_id AS varchar) AND erased_at IS NULL
      AND (CAST(:trusted AS boolean) OR secret_hash = CAST(:secret_hash AS varchar))
),
allowed AS (
    SELECT 1 WHERE CAST(:player_id AS varchar) IS NULL OR EXISTS (SELECT 1 FROM player)
),
{KEYED},
go AS (
    SELECT 1 FROM allowed
    WHERE CAST(:idem_key AS varchar) IS NULL OR EXISTS (SELECT 1 FROM keyed)
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
    SELECT :player_id, :version, :store, :train FROM go
    WHERE CAST(:version AS varchar) IS NOT NULL AND EXISTS (SELECT 1 FROM player)
      AND NOT EXISTS (SELECT 1 FROM same)
    RETURNING id, store, train
),
replaced AS (
    UPDATE consents SET withdrawn_at = now()
    WHERE player_id = CAST(:player_id AS varchar) AND withdrawn_at IS NULL
      AND CAST(:version AS varchar) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM same)
      AND EXISTS (SELECT 1 FROM go) AND EXISTS (SELECT 1 FROM player)
),
consent AS (
    SELECT id, store, train FROM same
    UNION ALL
    SELECT id, store, train FROM granted
),
inserted AS (
    INSERT INTO recognitions (
        id, origin, player_id, consent_id, consent_store, consent_train, word, client_key_id,
        input_format, payload, payload_png, status, attempts
    )
    SELECT
        :id, 'game', :player_id, consent.id, coalesce(consent.store, false),
        coalesce(consent.train, false), :word, CAST(:client_key_id AS varchar),
        CAST(:input_format AS input_format), :payload, :payload_png, 'queued', 0
    FROM go LEFT JOIN consent ON true
    RETURNING created_at, consent_store
)
SELECT EXISTS (SELECT 1 FROM allowed) AS allowed, inserted.created_at, inserted.consent_store
FROM (SELECT 1) AS one LEFT JOIN inserted ON true
""".replace("{KEYED}", claim_cte("allowed", "recognition_id", ":id"))
).bindparams(bindparam("payload", type_=JSONB(none_as_null=True)))


def insert_recognition(
    conn: Connection | Session,
    new: NewRecognition,
    claim: KeyClaim | None = None,
    *,
    trusted: bool = False,
) -> Accepted:
    """Record a doodle as queued, with a snapshot of the consent in force, and `claim`'s
    key naming it. A player is named only with their secret, unless `trusted` (tools and
    tests acting as the server). Never creates a player (db.players.create_player does).

    Raises PlayerNotProven or KeyTaken; either way nothing was written."""
    recognition_id = uuid.uuid4()
    grant = new.consent
    secret = new.player_secret
    row = conn.execute(
        _INSERT,
        {
            "id": recognition_id,
            "player_id": new.player_id,
            "trusted": trusted,
            "secret_hash": hash_secret(secret) if secret else None,
            **claim_params(claim),
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
    if not row.allowed:
        raise PlayerNotProven()
    if row.created_at is None:
        raise KeyTaken()
    return Accepted(recognition_id, row.created_at, row.consent_store)


def create_recognition(s: Session, new: NewRecognition) -> Recognition:
    """`insert_recognition` for tests and tools, which act as the server: the player (if
    any) must exist (db.players.create_player), no secret is asked. Returns the ORM row."""
    accepted = insert_recognition(s, new, trusted=True)
    row = s.get(Recognition, accepted.id)
    assert row is not None
    return row


def get_recognition(s: Session, recognition_id: uuid.UUID) -> Recognition | None:
    return s.get(Recognition, recognition_id)
