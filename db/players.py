"""Players' own data: who they are (an id the server issues, and the hash of their
secret), their consent grants, the audit of admins acting for them, and the queries an
export streams.

Every function takes a Session (or Connection) and never commits; the caller owns the
transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, Row, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db.idempotency import KeyClaim, KeyTaken, claim_cte, claim_params
from db.models import (
    AuditLog,
    Consent,
    Label,
    ModelVersionExample,
    Player,
    Recognition,
    Review,
)


@dataclass(frozen=True)
class IssuedSecret:
    """A player's new secret (handed out once) and the hash that is stored."""

    secret: str
    hash: str


def hash_secret(secret: str) -> str:
    # The secret has 256 bits of entropy: a plain sha256 cannot be reversed by guessing.
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_secret() -> IssuedSecret:
    secret = secrets.token_urlsafe(32)
    return IssuedSecret(secret, hash_secret(secret))


def new_player_id() -> str:
    """An id nobody can guess (128 random bits), so knowing one proves nothing and nobody
    can take another's before them."""
    return "p_" + secrets.token_urlsafe(16)


# One round trip: the Idempotency-Key (if any; only when free or expired), the player
# with the hash of their secret, and their first consent grant (if any).
_CREATE_PLAYER = text(
    """
WITH {KEYED},
player AS (
    INSERT INTO players (id, secret_hash)
    SELECT CAST(:id AS varchar), CAST(:secret_hash AS varchar)
    WHERE CAST(:idem_key AS varchar) IS NULL OR EXISTS (SELECT 1 FROM keyed)
    RETURNING id
),
granted AS (
    INSERT INTO consents (player_id, version, store, train)
    SELECT id, CAST(:version AS varchar), CAST(:store AS boolean), CAST(:train AS boolean)
    FROM player
    WHERE CAST(:version AS varchar) IS NOT NULL
)
SELECT EXISTS (SELECT 1 FROM player) AS created
""".replace(
        "{KEYED}",
        claim_cte("(SELECT 1) AS one", "player_id, nonce", "CAST(:id AS varchar), :nonce"),
    )
)


def insert_player(
    conn: Connection | Session,
    player_id: str,
    secret_hash: str,
    *,
    consent: tuple[str, bool, bool] | None = None,
    client_key_id: str | None = None,
    claim: KeyClaim | None = None,
    nonce: str | None = None,
) -> None:
    """A new player with the hash of their secret and, if given, their first consent
    grant (version, store, train); `claim`'s key (with `nonce`) names them. Raises
    KeyTaken (nothing written); an id in use is an IntegrityError."""
    version, store, train = consent if consent else (None, None, None)
    row = conn.execute(
        _CREATE_PLAYER,
        {
            "id": player_id,
            "secret_hash": secret_hash,
            "version": version,
            "store": store,
            "train": train,
            "client_key_id": client_key_id,
            "nonce": nonce,
            **claim_params(claim),
        },
    ).one()
    if not row.created:
        raise KeyTaken()


@dataclass(frozen=True)
class NewPlayer:
    id: str
    secret: str


def create_player(
    conn: Connection | Session,
    player_id: str | None = None,
    consent: tuple[str, bool, bool] | None = None,
) -> NewPlayer:
    """A player (tests and tools: the id may be chosen) and their secret."""
    issued = issue_secret()
    player = NewPlayer(player_id or new_player_id(), issued.secret)
    insert_player(conn, player.id, issued.hash, consent=consent)
    return player


@dataclass(frozen=True)
class KnownPlayer:
    id: str
    secret_hash: str | None


def find_player(conn: Connection | Session, player_id: str) -> KnownPlayer | None:
    """The player and their secret's hash; None if unknown or already erased."""
    row = conn.execute(
        select(Player.id, Player.secret_hash).where(
            Player.id == player_id, Player.erased_at.is_(None)
        )
    ).first()
    return KnownPlayer(row.id, row.secret_hash) if row else None


def player_secret_matches(conn: Connection | Session, player_id: str, secret: str | None) -> bool:
    """Is `secret` the secret of `player_id` (known, not erased)? Compared in constant time."""
    known = find_player(conn, player_id)
    if not secret or known is None or known.secret_hash is None:
        return False
    return hmac.compare_digest(hash_secret(secret).encode(), known.secret_hash.encode())


def audit(s: Session, *, actor: str, action: str, subject: str, details: dict) -> None:
    """An audit row (an admin acting for a player): `subject` never holds the id in clear."""
    s.add(AuditLog(actor=actor, action=action, subject=subject, details=details))


def lock_player(s: Session, player_id: str) -> bool:
    """Lock the player's row (grants are serialised per player); False if unknown."""
    found = s.execute(
        select(Player.id)
        .where(Player.id == player_id, Player.erased_at.is_(None))
        .with_for_update()
    ).first()
    return found is not None


def consents_of(s: Session, player_id: str) -> list[Consent]:
    """Every grant of the player, oldest first (the one in force has no withdrawn_at)."""
    return list(
        s.scalars(
            select(Consent)
            .where(Consent.player_id == player_id)
            .order_by(Consent.granted_at, Consent.id)
        )
    )


def withdraw_consents(s: Session, player_id: str) -> int:
    """End every grant in force; how many there were."""
    result = s.execute(
        update(Consent)
        .where(Consent.player_id == player_id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=func.now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def add_consent(s: Session, player_id: str, version: str, store: bool, train: bool) -> None:
    s.add(Consent(player_id=player_id, version=version, store=store, train=train))
    s.flush()


# -- export: each query streams (server-side cursor), a batch of rows at a time ----------

EXPORT_BATCH = 100


@dataclass(frozen=True)
class PlayerInfo:
    id: str
    created_at: dt.datetime


def player_row(s: Session, player_id: str) -> PlayerInfo | None:
    row = s.execute(
        select(Player.id, Player.created_at).where(
            Player.id == player_id, Player.erased_at.is_(None)
        )
    ).first()
    return PlayerInfo(row.id, row.created_at) if row else None


def _streamed(s: Session, stmt: Executable) -> Iterator[Row[Any]]:
    yield from s.execute(stmt.execution_options(yield_per=EXPORT_BATCH))


def recognitions_of(s: Session, player_id: str) -> Iterator[Row[Any]]:
    """The player's doodles, oldest first, with what is held of each (strokes, PNG and
    raster while in the row; object keys once written to object storage)."""
    r = Recognition
    return _streamed(
        s,
        select(
            r.id, r.created_at, r.word, r.input_format, r.status, r.finished_at, r.error,
            r.label, r.confidence, r.top, r.model_version_id, r.timings,
            r.consent_store, r.consent_train, r.stored_at, r.strokes_key, r.png_key,
            r.payload, r.payload_png, r.bitmap,
        )
        .where(r.player_id == player_id)
        .order_by(r.created_at, r.id),
    )  # fmt: skip


def labels_of(s: Session, player_id: str) -> Iterator[Row[Any]]:
    return _streamed(
        s,
        select(Label.recognition_id, Label.label, Label.source, Label.actor, Label.created_at)
        .join(Recognition, Recognition.id == Label.recognition_id)
        .where(Recognition.player_id == player_id)
        .order_by(Label.created_at, Label.id),
    )


def reviews_of(s: Session, player_id: str) -> Iterator[Row[Any]]:
    return _streamed(
        s,
        select(
            Review.recognition_id, Review.reason, Review.status, Review.created_at,
            Review.resolved_at, Review.resolved_by,
        )
        .join(Recognition, Recognition.id == Review.recognition_id)
        .where(Recognition.player_id == player_id)
        .order_by(Review.created_at, Review.id),
    )  # fmt: skip


def trained_on(s: Session, player_id: str) -> Iterator[Row[Any]]:
    """Which model versions were trained on which of the player's doodles."""
    return _streamed(
        s,
        select(ModelVersionExample.recognition_id, ModelVersionExample.model_version_id)
        .join(Recognition, Recognition.id == ModelVersionExample.recognition_id)
        .where(Recognition.player_id == player_id)
        .order_by(ModelVersionExample.model_version_id, ModelVersionExample.recognition_id),
    )


def set_secret_hash(s: Session, player_id: str, secret_hash: str) -> bool:
    """Replace the player's secret; False if there is no such player."""
    result = s.execute(
        update(Player)
        .where(Player.id == player_id, Player.erased_at.is_(None))
        .values(secret_hash=secret_hash)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
