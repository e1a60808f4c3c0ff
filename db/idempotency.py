"""Idempotency keys: what a client's key made, for its retries, and the pruning of old
keys. A key is written in the same statement as what it names (db.recognitions,
db.players); this module only reads and prunes them. Functions never commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db.models import IdempotencyKey


@dataclass(frozen=True)
class KeyClaim:
    """A client's Idempotency-Key, to be recorded with what its request makes."""

    key: str
    fingerprint: str  # of the request (`fingerprint`)
    ttl_hours: float  # an older key of the same name is free again

    @property
    def ttl_seconds(self) -> float:
        return self.ttl_hours * 3600


class KeyTaken(Exception):
    """The Idempotency-Key is recorded already (and not expired): nothing was written; the
    caller answers for what the key made (`find_key`)."""


def claim_cte(source: str, columns: str, values: str) -> str:
    """The `keyed` CTE of a statement that writes what a key names: it takes the key (one
    row from `source`) when free or expired (taken over), else returns no row, and the
    statement's other parts then write nothing. `columns`/`values`: what the key names."""
    return f"""
keyed AS (
    INSERT INTO idempotency_keys AS k (client_key_id, key, fingerprint, {columns})
    SELECT CAST(:client_key_id AS varchar), CAST(:idem_key AS varchar),
        CAST(:fingerprint AS varchar), {values}
    FROM {source}
    WHERE CAST(:idem_key AS varchar) IS NOT NULL
    ON CONFLICT (client_key_id, key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, recognition_id = EXCLUDED.recognition_id,
            player_id = EXCLUDED.player_id, nonce = EXCLUDED.nonce, created_at = now()
        WHERE k.created_at < now() - make_interval(secs => CAST(:ttl_seconds AS float8))
    RETURNING 1
)"""


def claim_params(claim: KeyClaim | None) -> dict[str, object]:
    return {
        "idem_key": claim.key if claim else None,
        "fingerprint": claim.fingerprint if claim else None,
        "ttl_seconds": claim.ttl_seconds if claim else 0.0,
    }


def fingerprint(parts: Iterable[bytes]) -> str:
    """The sha256 of a request's parts (operation, content type, query, body), each
    length-prefixed so that no two different requests run together the same."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredKey:
    fingerprint: str
    recognition_id: uuid.UUID | None
    player_id: str | None
    nonce: str | None


def find_key(
    conn: Connection | Session, client_key_id: str, key: str, ttl_hours: float
) -> StoredKey | None:
    """What `key` made, if it is recorded and not expired."""
    k = IdempotencyKey
    row = conn.execute(
        select(k.fingerprint, k.recognition_id, k.player_id, k.nonce).where(
            k.client_key_id == client_key_id,
            k.key == key,
            k.created_at >= func.now() - dt.timedelta(hours=ttl_hours),
        )
    ).first()
    if row is None:
        return None
    return StoredKey(row.fingerprint, row.recognition_id, row.player_id, row.nonce)


def prune_expired(conn: Connection | Session, ttl_hours: float, limit: int) -> int:
    """Delete up to `limit` keys older than the TTL (they answer for nothing any more);
    how many went. Call again until it returns less than `limit`."""
    k = IdempotencyKey
    expired = (
        select(k.client_key_id, k.key)
        .where(k.created_at < func.now() - dt.timedelta(hours=ttl_hours))
        .limit(limit)
    )
    result = conn.execute(delete(k).where(tuple_(k.client_key_id, k.key).in_(expired)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
