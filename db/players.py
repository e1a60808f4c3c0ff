"""Players' own data: their secret, their consent grants, the audit of admins acting for
them, and the queries an export streams.

Every function takes a Session (or Connection) and never commits; the caller owns the
transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db.models import AuditLog, Player


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


def audit(s: Session, *, actor: str, action: str, subject: str, details: dict) -> None:
    """An audit row (an admin acting for a player): `subject` never holds the id in clear."""
    s.add(AuditLog(actor=actor, action=action, subject=subject, details=details))
