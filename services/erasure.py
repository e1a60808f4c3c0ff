"""A player's erasure (GDPR Art. 17): a request worked until done, then its receipt.

- `request_erasure` records the request (one pending request a player: asking again
  returns it). A player who no longer exists gets the receipt of their last erasure;
  one never seen is UnknownPlayer.
- `work_erasure` does it, idempotently, under a lease: a worker killed half-way leaves
  the request pending; once the lease runs out the sweeper resends it and the next
  attempt carries on (every step is idempotent, the counts add up across attempts; a
  crash between a batch's removal and its tally leaves that batch out of the counts).
  Order: the model versions trained on the player's doodles (read before the rows go,
  marked `erased_data_at`), then the doodles from every store (services.removal; the
  dataset manifests of those versions count them under "removed": {"erasure": n}), then,
  in one transaction, the consents, the player, and the request made a receipt.
- Once done, the files are rewritten too (services.erasure_scrub): Postgres' tables
  and Redis' append-only file still hold the erased values until then.
- The receipt keeps no personal data: the player is named by HMAC-SHA256(receipt key,
  player id), the ref services.players gives audit rows; `player_id` is cleared when
  done. Audit rows naming the player in clear name the ref instead.

A player id that posts again after its erasure starts from nothing (a new player row,
a new secret): nothing of the old player is left to find.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis

from core.tasks import enqueue_erasure
from db import erasures as q
from db import lineage as db_lineage
from db.erasures import ErasureRow
from services.connections import Connections
from services.erasure_scrub import scrub_erased_data
from services.errors import UnknownErasure, UnknownPlayer
from services.players import player_ref
from services.removal import remove_doodles

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class Erasure:
    """A request, as the API and the CLI show it: never the player id."""

    public_id: uuid.UUID
    status: str
    player_ref: str
    requested_by: str
    requested_at: str
    completed_at: str | None
    deleted: dict[str, int]
    model_versions: list[int]
    replaced_by_version: int | None
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, row: ErasureRow) -> Erasure:
        return cls(
            public_id=row.public_id,
            status=row.status,
            player_ref=row.player_ref,
            requested_by=row.requested_by,
            requested_at=row.requested_at.isoformat(),
            completed_at=row.completed_at.isoformat() if row.completed_at else None,
            deleted=dict(sorted(row.deleted.items())),
            model_versions=list(row.model_versions),
            replaced_by_version=row.replaced_by_version,
            attempts=row.attempts,
            last_error=row.last_error,
        )

    @property
    def done(self) -> bool:
        return self.status == "done"

    def document(self) -> dict[str, Any]:
        """The status, and once done the receipt (no personal data either way)."""
        doc: dict[str, Any] = {
            "id": str(self.public_id),
            "status": self.status,
            "player_ref": self.player_ref,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "completed_at": self.completed_at,
        }
        if self.done:
            doc["receipt"] = {
                "deleted": self.deleted,
                "model_versions": self.model_versions,
                "replaced_by_version": self.replaced_by_version,
            }
        else:
            doc["attempts"] = self.attempts
            doc["last_error"] = self.last_error
        return doc


@dataclass(frozen=True)
class Requested:
    erasure: Erasure
    created: bool  # False: an earlier request (pending, or the receipt of a done one)


def request_erasure(connections: Connections, player_id: str, requested_by: str) -> Requested:
    """Ask for the player's erasure; idempotent (see the module's docstring)."""
    ref = player_ref(connections.settings, player_id)
    with connections.engine.begin() as conn:
        q.lock_player_requests(conn, player_id)
        pending = q.pending_for(conn, player_id)
        if pending is not None:
            return Requested(Erasure.of(pending), created=False)
        if not q.player_exists(conn, player_id):
            done = q.latest_done_for(conn, ref)
            if done is None:
                raise UnknownPlayer("no player has this id")
            return Requested(Erasure.of(done), created=False)
        row = q.insert_request(conn, player_id, ref, requested_by)
    log.info("erasure %s requested by %s", row.public_id, requested_by)
    return Requested(Erasure.of(row), created=True)


def get_erasure(connections: Connections, public_id: uuid.UUID) -> Erasure:
    with connections.engine.begin() as conn:
        row = q.get(conn, public_id)
    if row is None:
        raise UnknownErasure(f"no erasure {public_id}")
    return Erasure.of(row)


def pending_player(connections: Connections, public_id: uuid.UUID) -> str | None:
    """The player a pending request is for (to authorise its owner), None once done."""
    with connections.engine.begin() as conn:
        row = q.get(conn, public_id)
    return row.player_id if row is not None and row.status == "pending" else None


def work_erasure(
    connections: Connections, redis_client: redis.Redis, public_id: uuid.UUID
) -> Erasure | None:
    """Do the erasure if it is pending and nobody holds it; its state after, or None when
    there was nothing for this call to do (done already, or another worker's)."""
    lease = connections.settings.lease_seconds * 4
    with connections.engine.begin() as conn:
        row = q.claim(conn, public_id, lease)
    if row is None:
        return None
    assert row.player_id is not None  # pending rows hold it
    try:
        _erase(connections, redis_client, row, lease)
    except Exception as exc:
        # Never the message: it could quote an id. The sweeper resends the request.
        with connections.engine.begin() as conn:
            q.failed(conn, public_id, f"{type(exc).__name__} on attempt {row.attempts}")
        raise
    log.info("erasure %s done", public_id)
    return get_erasure(connections, public_id)


def _erase(
    connections: Connections, redis_client: redis.Redis, row: ErasureRow, lease: float
) -> None:
    player_id = row.player_id
    assert player_id is not None
    with connections.engine.begin() as conn:
        q.record_versions(conn, row.public_id, q.versions_trained_on_player(conn, player_id))
    while True:
        with connections.engine.begin() as conn:
            doodles = q.player_doodles(conn, player_id, BATCH)
        if doodles:
            with connections.sessions() as s:
                trained = db_lineage.versions_trained_on(s, doodles)
            counts = remove_doodles(connections, redis_client, doodles)
            with connections.sessions.begin() as s:
                # The manifests keep counts and a digest, never ids: they say how many
                # of their examples were erased since.
                db_lineage.record_removed_examples(s, trained, "erasure")
            with connections.engine.begin() as conn:
                q.add_deleted(conn, row.public_id, dict(counts))
                q.extend_lease(conn, row.public_id, lease)
            continue
        with connections.engine.begin() as conn:
            # The player's row locked: no doodle of theirs can be recorded meanwhile.
            if q.lock_player(conn, player_id) and q.player_doodles(conn, player_id, 1):
                continue  # one arrived since: remove it first
            counts = Counter(q.delete_player(conn, player_id, row.player_ref))
            q.add_deleted(conn, row.public_id, dict(counts))
            q.complete(conn, row.public_id)
        return


def erase_player(
    connections: Connections,
    redis_client: redis.Redis,
    player_id: str,
    requested_by: str,
    *,
    now: bool = False,
) -> Erasure:
    """Ask for the erasure and send it to the workers, or with `now` do it in this
    process (`doodle players erase --wait`); its state after."""
    state = request_erasure(connections, player_id, requested_by).erasure
    if state.done:
        return state
    if not now:
        enqueue_erasure(redis_client, state.public_id)
        return state
    work_erasure(connections, redis_client, state.public_id)
    # The files too, unless other erasures are pending (their worker does it then).
    scrub_erased_data(connections, redis_client)
    # None from work_erasure: a worker holds it; its state says how far it got.
    return get_erasure(connections, state.public_id)
