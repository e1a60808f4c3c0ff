"""The model registry: versions of the network and the aliases that point at them.

Every function takes a `Session` and never commits; the caller owns the transaction::

    with factory.begin() as s:
        v = register_model_version(s, classes=[...], artifact_key=key, checksum=sha)
        move_alias(s, "candidate", v.id, actor="flow:fine-tune")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import ModelAlias, ModelAliasHistory, ModelVersion

DEFAULT_ARCHITECTURE = "quickdraw-cnn-v1"


class UnknownModelVersion(LookupError):
    """An alias was pointed at a model version id that does not exist."""


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
