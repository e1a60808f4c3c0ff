"""The model registry: versions of the network and the aliases that point at them.

Every function takes a `Session` and never commits; the caller owns the transaction::

    with factory.begin() as s:
        v = register_model_version(s, classes=[...], artifact_key=key, checksum=sha)
        move_alias(s, Alias.CANDIDATE, v.id, actor="flow:fine-tune")

`promote` and `rollback` move `production` (the CLI, the admin API and the flywheel's
gate, through `services.registry`). They lock the alias row, record the move in
`model_alias_history` and an `audit_log` row, so every channel leaves the same trail.
`move_alias` moves any other alias (the fine-tune flow's `candidate`): history row only.

Rollback semantics: `rollback` undoes the latest move of `production` that has not been
undone yet, i.e. it goes back to the previous production version in one call. Its
history row says which move it undid (reason ``"rollback of #<history id>"``), so a
second rollback goes one step further back instead of toggling between two versions::

    promote 2, promote 3          production: 1 -> 2 -> 3
    rollback                      back to 2 (undoes "2 -> 3")
    rollback                      back to 1 (undoes "1 -> 2")
    rollback                      NothingToRollBack: the first version has no "before"
    promote 4, rollback           back to 1 (undoes "1 -> 4")
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import (
    AuditLog,
    ModelAlias,
    ModelAliasHistory,
    ModelVersion,
)

DEFAULT_ARCHITECTURE = "quickdraw-cnn-v1"
# The metrics entry of a version whose weights were deleted from object storage.
_ROLLBACK_REASON = re.compile(r"^rollback of #(\d+)")


class Alias(StrEnum):
    """The aliases the product moves. Any other name is still a valid alias (an operator
    may keep e.g. `baseline`); these are the ones code refers to, by the same strings the
    HTTP API and the CLI show."""

    PRODUCTION = "production"  # what the workers serve
    CANDIDATE = "candidate"  # the fine-tune flow's latest model, before the gate


class UnknownModelVersion(LookupError):
    """An alias was pointed at a model version id that does not exist."""


class NothingToRollBack(LookupError):
    """The alias has no earlier version to go back to (never moved, or every move undone)."""


def register_model_version(
    s: Session,
    *,
    classes: Sequence[str],
    artifact_key: str,
    checksum: str,
    architecture: str = DEFAULT_ARCHITECTURE,
    parent_id: int | None = None,
    metrics: dict[str, Any] | None = None,
    dataset_manifest: dict[str, Any] | None = None,
    source: str = "",
) -> ModelVersion:
    """Record a trained network; flushes so that the returned version has its id."""
    version = ModelVersion(
        classes=list(classes),
        artifact_key=artifact_key,
        checksum=checksum,
        architecture=architecture,
        parent_id=parent_id,
        metrics=dict(metrics or {}),
        dataset_manifest=dict(dataset_manifest or {}),
        source=source,
    )
    s.add(version)
    s.flush()
    return version


def _lock_alias(s: Session, alias: str) -> ModelAlias | None:
    return s.execute(
        select(ModelAlias)
        .where(ModelAlias.name == alias)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def move_alias(
    s: Session, alias: str, version_id: int, *, actor: str, reason: str = ""
) -> ModelAlias:
    """Point `alias` at `version_id` (creating the alias if new) and record the move.

    The alias row is locked (SELECT ... FOR UPDATE) until the caller's transaction ends,
    so concurrent moves of one alias serialise and each history row has the right `from`.
    The first move of a new alias inserts it with ON CONFLICT DO NOTHING, which waits
    for a concurrent first move to finish instead of failing. Moving an alias to where
    it already points is still recorded.
    """
    if s.get(ModelVersion, version_id) is None:
        raise UnknownModelVersion(f"model version {version_id} does not exist")

    row = _lock_alias(s, alias)
    from_version_id = row.model_version_id if row is not None else None
    if row is None:
        inserted = s.execute(
            insert(ModelAlias)
            .values(name=alias, model_version_id=version_id, updated_by=actor)
            .on_conflict_do_nothing(index_elements=[ModelAlias.name])
            .returning(ModelAlias.name)
        ).first()
        # Ours, or the one a concurrent first move has just committed.
        row = _lock_alias(s, alias)
        assert row is not None
        if inserted is None:
            from_version_id = row.model_version_id

    row.model_version_id = version_id
    row.updated_by = actor
    row.updated_at = func.now()
    s.add(
        ModelAliasHistory(
            alias=alias,
            from_version_id=from_version_id,
            to_version_id=version_id,
            actor=actor,
            reason=reason,
        )
    )
    s.flush()
    # updated_at is computed by the server; load it now so it stays readable after commit.
    s.refresh(row, ["updated_at"])
    return row


def get_alias(s: Session, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None if the alias does not exist."""
    return s.execute(
        select(ModelVersion)
        .join(ModelAlias, ModelAlias.model_version_id == ModelVersion.id)
        .where(ModelAlias.name == alias)
    ).scalar_one_or_none()


def get_version(s: Session, version_id: int) -> ModelVersion | None:
    return s.get(ModelVersion, version_id)


def list_versions(s: Session) -> list[ModelVersion]:
    """Every version, newest first."""
    return list(s.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())))


def alias_history(s: Session, alias: str) -> list[ModelAliasHistory]:
    """Every move of `alias`, newest first."""
    return list(
        s.scalars(
            select(ModelAliasHistory)
            .where(ModelAliasHistory.alias == alias)
            .order_by(ModelAliasHistory.id.desc())
        )
    )


def aliases_of(s: Session) -> dict[int, list[str]]:
    """Version id -> the names of the aliases pointing at it (sorted); unaliased versions absent."""
    result: dict[int, list[str]] = {}
    for version_id, name in s.execute(
        select(ModelAlias.model_version_id, ModelAlias.name).order_by(ModelAlias.name)
    ):
        result.setdefault(version_id, []).append(name)
    return result


def lock_aliased_versions(s: Session) -> set[int]:
    """The versions some alias points at, with the alias rows locked against moves
    (FOR SHARE) until the caller's transaction ends."""
    return set(s.scalars(select(ModelAlias.model_version_id).with_for_update(read=True)))


def recent_alias_versions(s: Session, entries: int) -> set[int]:
    """The versions named (from or to) by the last `entries` moves of every alias: what a
    rollback may go back to."""
    if entries <= 0:
        return set()
    ranked = select(
        ModelAliasHistory.from_version_id,
        ModelAliasHistory.to_version_id,
        func.row_number()
        .over(partition_by=ModelAliasHistory.alias, order_by=ModelAliasHistory.id.desc())
        .label("rank"),
    ).subquery()
    rows = s.execute(
        select(ranked.c.from_version_id, ranked.c.to_version_id).where(ranked.c.rank <= entries)
    )
    return {v for row in rows for v in row if v is not None}


def latest_move(s: Session, alias: str) -> ModelAliasHistory | None:
    """The newest history row of `alias`, or None if it never moved."""
    return s.scalars(
        select(ModelAliasHistory)
        .where(ModelAliasHistory.alias == alias)
        .order_by(ModelAliasHistory.id.desc())
        .limit(1)
    ).first()


def _audit(s: Session, *, actor: str, action: str, move: ModelAliasHistory) -> None:
    s.add(
        AuditLog(
            actor=actor,
            action=action,
            subject=f"model_alias:{move.alias}",
            details={
                "alias": move.alias,
                "from_version": move.from_version_id,
                "to_version": move.to_version_id,
                "history_id": move.id,
                "reason": move.reason,
            },
        )
    )


def promote(
    s: Session, version_id: int, *, actor: str, reason: str = "", alias: str = Alias.PRODUCTION
) -> ModelVersion:
    """Point `production` at `version_id`; returns that version.

    Raises UnknownModelVersion for an id that does not exist. Promoting the version that
    is already in production changes nothing and records nothing (so that a later
    rollback undoes a real move, not a no-op). A real move is recorded in the alias
    history and the audit log (action ``model.promote``).
    """
    version = s.get(ModelVersion, version_id)
    if version is None:
        raise UnknownModelVersion(f"model version {version_id} does not exist")
    row = _lock_alias(s, alias)
    if row is not None and row.model_version_id == version_id:
        return version
    move_alias(s, alias, version_id, actor=actor, reason=reason)
    move = latest_move(s, alias)
    assert move is not None
    _audit(s, actor=actor, action="model.promote", move=move)
    s.flush()
    return version


def _move_to_undo(history: Sequence[ModelAliasHistory]) -> ModelAliasHistory | None:
    """The newest move not undone yet, given the alias's history newest first.

    A rollback row undoes the move it names only if it really reversed it (its `from` is
    that move's `to` and its `to` that move's `from`), so a reason typed by hand that
    merely looks like a rollback's changes nothing.
    """
    by_id = {h.id: h for h in history}
    undone: set[int] = set()
    for h in history:
        match = _ROLLBACK_REASON.match(h.reason or "")
        if match is None:
            continue
        target = by_id.get(int(match.group(1)))
        if (
            target is not None
            and target.id < h.id
            and h.from_version_id == target.to_version_id
            and h.to_version_id == target.from_version_id
        ):
            undone.add(h.id)  # the rollback itself is not a move to undo
            undone.add(target.id)
    for h in history:
        if h.id not in undone:
            return h
    return None


def rollback(
    s: Session, *, actor: str, reason: str = "", alias: str = Alias.PRODUCTION
) -> ModelVersion:
    """Move `production` back to the version it pointed at before its latest (not yet
    undone) move; returns that version. See the module docstring for repeated rollbacks.

    Raises NothingToRollBack when the alias never moved, or when the move to undo is its
    creation (there is no version before it). Recorded in the history (reason
    ``"rollback of #<id>: <reason>"``) and the audit log (action ``model.rollback``).
    """
    row = _lock_alias(s, alias)  # serialises concurrent rollbacks and promotions
    if row is None:
        raise NothingToRollBack(f"alias '{alias}' does not exist: nothing to roll back")
    undo = _move_to_undo(alias_history(s, alias))
    if undo is None or undo.from_version_id is None:
        raise NothingToRollBack(
            f"alias '{alias}' has no earlier version to roll back to "
            f"(it points at version {row.model_version_id})"
        )
    if undo.to_version_id != row.model_version_id:
        # Only possible if the alias row was changed without going through move_alias.
        raise NothingToRollBack(
            f"alias '{alias}' points at version {row.model_version_id}, but its history "
            f"ends at version {undo.to_version_id}; promote a version explicitly"
        )
    note = f"rollback of #{undo.id}" + (f": {reason}" if reason else "")
    move_alias(s, alias, undo.from_version_id, actor=actor, reason=note)
    move = latest_move(s, alias)
    assert move is not None
    _audit(s, actor=actor, action="model.rollback", move=move)
    s.flush()
    version = s.get(ModelVersion, undo.from_version_id)
    assert version is not None
    return version


def move_as_dict(move: ModelAliasHistory) -> dict[str, Any]:
    """One alias move as the CLI and the admin API show it."""
    return {
        "id": move.id,
        "alias": move.alias,
        "from": move.from_version_id,
        "to": move.to_version_id,
        "actor": move.actor,
        "reason": move.reason,
        "moved_at": move.moved_at.isoformat(),
    }
