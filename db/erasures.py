"""Removing doodles from the database, and the erasure requests that ask for it.

Objects and rows go together, one object key at a time: `lock_object_key` makes the
erasure and the object writer (workers.objects) exclude each other per key, so a segment
is never written back with a doodle whose row is gone. Every function takes a Connection
(or Session) and leaves committing to the caller.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

Conn = Connection | Session

# --------------------------------------------------------------------------- doodles


@dataclass(frozen=True)
class DoodleObjects:
    """Where a doodle's objects are (None: not decided yet, or never kept)."""

    id: uuid.UUID
    strokes_key: str | None
    png_key: str | None


_LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
_LOCK_KEYS = text(
    "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
)


def lock_object_key(conn: Conn, key: str) -> None:
    """Hold the key's lock until the transaction ends (the writer takes the same one)."""
    conn.execute(_LOCK_KEY, {"key": key})


def lock_object_keys(conn: Conn, keys: Iterable[str]) -> None:
    """Several keys' locks, always in the same order (no deadlock between two holders)."""
    conn.execute(_LOCK_KEYS, {"keys": sorted(set(keys))})


def existing(conn: Conn, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these doodles still have a row."""
    if not ids:
        return set()
    rows = conn.execute(
        text("SELECT id FROM recognitions WHERE id = ANY(:ids)"), {"ids": list(ids)}
    )
    return {r.id for r in rows}


def doodle_objects(conn: Conn, ids: Sequence[uuid.UUID]) -> list[DoodleObjects]:
    rows = conn.execute(
        text("SELECT id, strokes_key, png_key FROM recognitions WHERE id = ANY(:ids) ORDER BY id"),
        {"ids": list(ids)},
    )
    return [DoodleObjects(r.id, r.strokes_key, r.png_key) for r in rows]


def held_in(conn: Conn, ids: Sequence[uuid.UUID], key: str) -> list[uuid.UUID]:
    """Those of the doodles whose row names `key` as their segment or PNG (now)."""
    rows = conn.execute(
        text(
            "SELECT id FROM recognitions WHERE id = ANY(:ids) "
            "AND (strokes_key = :key OR png_key = :key)"
        ),
        {"ids": list(ids), "key": key},
    )
    return [r.id for r in rows]


_DELETE_DEPENDANTS = text(
    """
WITH labels AS (DELETE FROM labels WHERE recognition_id = ANY(:ids) RETURNING 1),
reviews AS (DELETE FROM reviews WHERE recognition_id = ANY(:ids) RETURNING 1),
examples AS (
    DELETE FROM model_version_examples WHERE recognition_id = ANY(:ids) RETURNING 1
),
audit AS (
    UPDATE audit_log SET subject = 'recognition:erased' WHERE subject = ANY(:subjects)
    RETURNING 1
)
SELECT (SELECT count(*) FROM labels) AS labels, (SELECT count(*) FROM reviews) AS reviews,
       (SELECT count(*) FROM examples) AS model_examples,
       (SELECT count(*) FROM audit) AS audit_rows_redacted
"""
)

# Only doodles without an object key: one that got a key since it was read goes through
# its key's lock instead (its object may have been written meanwhile).
_DELETE_KEYLESS = "AND strokes_key IS NULL AND png_key IS NULL"


def delete_doodles(conn: Conn, ids: Sequence[uuid.UUID], *, keyless_only: bool) -> dict[str, int]:
    """Delete doodles' rows and what hangs on them (labels, reviews, lineage); audit rows
    naming them keep their action but no longer the doodle. Counts per kind."""
    if not ids:
        return {}
    where = _DELETE_KEYLESS if keyless_only else ""
    deleted = [
        r.id
        for r in conn.execute(
            text(f"SELECT id FROM recognitions WHERE id = ANY(:ids) {where} FOR UPDATE"),
            {"ids": list(ids)},
        )
    ]
    if not deleted:
        return {}
    subjects = [f"recognition:{i}" for i in deleted]
    counts = dict(
        conn.execute(_DELETE_DEPENDANTS, {"ids": deleted, "subjects": subjects}).one()._mapping
    )
    conn.execute(text("DELETE FROM recognitions WHERE id = ANY(:ids)"), {"ids": deleted})
    return {"recognitions": len(deleted), **{k: int(v) for k, v in counts.items()}}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class ErasureRow:
    public_id: uuid.UUID
    status: str
    player_ref: str
    player_id: str | None
    requested_by: str
    requested_at: dt.datetime
    completed_at: dt.datetime | None
    deleted: dict[str, int]
    model_versions: list[int]
    replaced_by_version: int | None
    attempts: int
    last_error: str | None


_COLUMNS = """
    public_id, status, player_ref, player_id, requested_by, requested_at, completed_at, deleted,
    model_versions, replaced_by_version, attempts, last_error
"""


def _row(r: Any) -> ErasureRow:
    return ErasureRow(**{k: r._mapping[k] for k in ErasureRow.__dataclass_fields__})


def lock_player_requests(conn: Conn, player_id: str) -> None:
    """Serialise requests for one player (two DELETEs at once make one request)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('erasure:' || :p))"), {"p": player_id})


def pending_for(conn: Conn, player_id: str) -> ErasureRow | None:
    r = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM erasures WHERE player_id = :p AND status = 'pending' "
            "ORDER BY requested_at LIMIT 1"
        ),
        {"p": player_id},
    ).first()
    return _row(r) if r else None


def latest_done_for(conn: Conn, player_ref: str) -> ErasureRow | None:
    r = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM erasures WHERE player_ref = :ref AND status = 'done' "
            "ORDER BY completed_at DESC LIMIT 1"
        ),
        {"ref": player_ref},
    ).first()
    return _row(r) if r else None


def player_exists(conn: Conn, player_id: str) -> bool:
    found = conn.execute(text("SELECT 1 FROM players WHERE id = :p"), {"p": player_id}).first()
    return found is not None


def insert_request(conn: Conn, player_id: str, player_ref: str, requested_by: str) -> ErasureRow:
    r = conn.execute(
        text(
            "INSERT INTO erasures (player_id, player_ref, requested_by) "
            f"VALUES (:p, :ref, :by) RETURNING {_COLUMNS}"
        ),
        {"p": player_id, "ref": player_ref, "by": requested_by},
    ).one()
    return _row(r)


def get(conn: Conn, public_id: uuid.UUID) -> ErasureRow | None:
    r = conn.execute(
        text(f"SELECT {_COLUMNS} FROM erasures WHERE public_id = :id"), {"id": public_id}
    ).first()
    return _row(r) if r else None


def claim(conn: Conn, public_id: uuid.UUID, lease_seconds: float) -> ErasureRow | None:
    """Take a pending request nobody holds (or whose holder's lease ran out), or None."""
    r = conn.execute(
        text(
            "UPDATE erasures SET attempts = attempts + 1, "
            "lease_until = now() + make_interval(secs => :lease) "
            "WHERE public_id = :id AND status = 'pending' "
            "AND (lease_until IS NULL OR lease_until < now()) "
            f"RETURNING {_COLUMNS}"
        ),
        {"id": public_id, "lease": lease_seconds},
    ).first()
    return _row(r) if r else None


def extend_lease(conn: Conn, public_id: uuid.UUID, lease_seconds: float) -> None:
    conn.execute(
        text(
            "UPDATE erasures SET lease_until = now() + make_interval(secs => :lease) "
            "WHERE public_id = :id AND status = 'pending'"
        ),
        {"id": public_id, "lease": lease_seconds},
    )


def add_deleted(conn: Conn, public_id: uuid.UUID, counts: dict[str, int]) -> None:
    """Add counts to the request's tally (kept across attempts)."""
    if not any(counts.values()):
        return
    conn.execute(
        text(
            """
UPDATE erasures SET deleted = (
    SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb) FROM (
        SELECT k, sum(v)::int AS v FROM (
            SELECT key AS k, value::int AS v FROM jsonb_each_text(deleted)
            UNION ALL
            SELECT key, value::int FROM jsonb_each_text(CAST(:counts AS jsonb))
        ) AS both_ GROUP BY k
    ) AS summed
)
WHERE public_id = :id
"""
        ),
        {"id": public_id, "counts": json.dumps({k: v for k, v in counts.items() if v})},
    )


def versions_trained_on_player(conn: Conn, player_id: str) -> list[int]:
    rows = conn.execute(
        text(
            "SELECT DISTINCT e.model_version_id FROM model_version_examples e "
            "JOIN recognitions r ON r.id = e.recognition_id WHERE r.player_id = :p "
            "ORDER BY 1"
        ),
        {"p": player_id},
    )
    return [r[0] for r in rows]


def record_versions(conn: Conn, public_id: uuid.UUID, versions: Sequence[int]) -> list[int]:
    """Add versions to the request's list and mark them trained on erased data; returns
    the request's whole list."""
    if versions:
        conn.execute(
            text(
                "UPDATE model_versions SET erased_data_at = now() "
                "WHERE id = ANY(:v) AND erased_data_at IS NULL"
            ),
            {"v": list(versions)},
        )
    r = conn.execute(
        text(
            """
UPDATE erasures SET model_versions = (
    SELECT coalesce(jsonb_agg(DISTINCT v ORDER BY v), '[]'::jsonb) FROM (
        SELECT value::int AS v FROM jsonb_array_elements_text(model_versions)
        UNION SELECT unnest(CAST(:v AS int[]))
    ) AS vs
)
WHERE public_id = :id RETURNING model_versions
"""
        ),
        {"id": public_id, "v": list(versions)},
    ).one()
    return list(r.model_versions)


def player_doodles(conn: Conn, player_id: str, limit: int = 500) -> list[uuid.UUID]:
    rows = conn.execute(
        text("SELECT id FROM recognitions WHERE player_id = :p ORDER BY id LIMIT :n"),
        {"p": player_id, "n": limit},
    )
    return [r.id for r in rows]


def lock_player(conn: Conn, player_id: str) -> bool:
    """Lock the player's row (no doodle of theirs can be recorded meanwhile); False if gone."""
    found = conn.execute(
        text("SELECT 1 FROM players WHERE id = :p FOR UPDATE"), {"p": player_id}
    ).first()
    return found is not None


def delete_player(conn: Conn, player_id: str, player_ref: str) -> dict[str, int]:
    """The player's row and consents; audit rows naming the player name the ref instead."""
    consents = len(
        conn.execute(
            text("DELETE FROM consents WHERE player_id = :p RETURNING 1"), {"p": player_id}
        ).all()
    )
    audit = conn.execute(
        text(
            "UPDATE audit_log SET subject = replace(subject, :p, :ref), "
            "actor = replace(actor, :p, :ref), "
            "details = CAST(replace(CAST(details AS text), :p, :ref) AS jsonb) "
            "WHERE strpos(subject, :p) > 0 OR strpos(CAST(details AS text), :p) > 0 "
            "OR strpos(actor, :p) > 0 RETURNING 1"
        ),
        {"p": player_id, "ref": player_ref},
    ).all()
    players = conn.execute(
        text("DELETE FROM players WHERE id = :p RETURNING 1"), {"p": player_id}
    ).all()
    return {"players": len(players), "consents": consents, "audit_rows_redacted": len(audit)}


def complete(conn: Conn, public_id: uuid.UUID) -> None:
    """Done: the request keeps no personal data from now on."""
    conn.execute(
        text(
            "UPDATE erasures SET status = 'done', player_id = NULL, completed_at = now(), "
            "lease_until = NULL, last_error = NULL WHERE public_id = :id"
        ),
        {"id": public_id},
    )


def failed(conn: Conn, public_id: uuid.UUID, error: str) -> None:
    """An attempt failed: say why (never personal data) and let the sweeper resend it."""
    conn.execute(
        text(
            "UPDATE erasures SET last_error = :e, lease_until = now() "
            "WHERE public_id = :id AND status = 'pending'"
        ),
        {"id": public_id, "e": error[:500]},
    )


def stale(conn: Conn, requested_before: dt.datetime, limit: int = 100) -> list[uuid.UUID]:
    """Pending requests nobody holds, asked before a moment: for the sweeper to resend."""
    rows = conn.execute(
        text(
            "SELECT public_id FROM erasures WHERE status = 'pending' "
            "AND (lease_until IS NULL OR lease_until < now()) AND requested_at < :before "
            "ORDER BY requested_at LIMIT :n"
        ),
        {"before": requested_before, "n": limit},
    )
    return [r.public_id for r in rows]


# --------------------------------------------------------------------------- the disk

# The tables an erasure deletes rows from or rewrites rows of (audit_log, erasures), and
# those whose rows go with them by foreign key. Their files keep the erased values after
# the commit: in dead tuples, and in the free space a plain VACUUM leaves in a page (it
# moves the live tuples together but never clears the gap), in their indexes too.
ERASED_TABLES = (
    "recognitions",
    "labels",
    "reviews",
    "model_version_examples",
    "audit_log",
    "idempotency_keys",
    "consents",
    "players",
    "erasures",
)


def latest_completion(conn: Conn) -> dt.datetime | None:
    """When the last erasure was done (None: never)."""
    found: dt.datetime | None = conn.execute(
        text("SELECT max(completed_at) FROM erasures WHERE status = 'done'")
    ).scalar()
    return found


def any_pending(conn: Conn) -> bool:
    return bool(
        conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM erasures WHERE status = 'pending')")
        ).scalar()
    )


def database_now(conn: Conn) -> dt.datetime:
    now: dt.datetime = conn.execute(text("SELECT now()")).scalar_one()
    return now


def existing_tables(conn: Connection, tables: Sequence[str]) -> list[str]:
    """Those of `tables` in the current schema (a table a later migration adds may not be)."""
    rows = conn.execute(
        text("SELECT t FROM unnest(CAST(:t AS text[])) AS t WHERE to_regclass(t) IS NOT NULL"),
        {"t": list(tables)},
    )
    return [str(name) for name in rows.scalars()]


def table_bytes(conn: Connection, table: str) -> int:
    """The table's size on disk, with its indexes and TOAST."""
    size: int = conn.execute(
        text("SELECT pg_total_relation_size(to_regclass(:t))"), {"t": table}
    ).scalar_one()
    return size


def vacuum_table(conn: Connection, table: str, *, full: bool) -> None:
    """VACUUM FULL: the table, its TOAST and its indexes written to new files, the old ones
    truncated at commit; it holds an ACCESS EXCLUSIVE lock while it copies. A plain VACUUM
    takes out the dead rows' index entries and line pointers, but leaves their bytes in the
    pages' free space until new rows overwrite them. `conn` must be in autocommit (VACUUM
    refuses a transaction); a lock is waited for up to the session's lock_timeout."""
    if table not in ERASED_TABLES:  # a name from our list only: it is quoted into SQL
        raise ValueError(f"not a table erasures touch: {table}")
    options = "FULL, ANALYZE" if full else "ANALYZE"
    conn.execute(text(f'VACUUM ({options}) "{table}"'))


def checkpoint(conn: Connection) -> None:
    """A checkpoint (superuser or pg_checkpoint): WAL before it may then be recycled."""
    conn.execute(text("CHECKPOINT"))


def sessions_with_older_snapshots(conn: Connection, since: dt.datetime) -> int:
    """Other sessions of this database in a transaction begun before `since` that holds a
    snapshot or a transaction id (a long query, a transaction left open after a write, an
    autovacuum's ANALYZE): rows deleted after it began may still be visible to it, so no
    VACUUM removes them while it lasts."""
    found: int = conn.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() "
            "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) "
            "AND coalesce(xact_start, query_start, backend_start) < :since"
        ),
        {"since": since},
    ).scalar_one()
    return found
