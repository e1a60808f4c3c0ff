"""Model lineage: which recognitions each version was trained on, the family tree of
versions, and what erasures and retention did to them.

Every function takes a `Session` and never commits; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import ModelVersion, ModelVersionExample

# The key, in a version's metrics, that says its weights were deleted (and why, when).
ARTIFACT_DELETED = "artifact_deleted"


def add_version_examples(s: Session, version_id: int, recognition_ids: Sequence[uuid.UUID]) -> None:
    """Record the recognitions `version_id` was trained on (its lineage), in one statement."""
    if recognition_ids:
        s.execute(
            insert(ModelVersionExample),
            [{"model_version_id": version_id, "recognition_id": rid} for rid in recognition_ids],
        )


def versions_trained_on(s: Session, recognition_ids: Sequence[uuid.UUID]) -> dict[int, int]:
    """Version id -> how many of these recognitions it was trained on (absent: none)."""
    if not recognition_ids:
        return {}
    rows = s.execute(
        select(ModelVersionExample.model_version_id, func.count())
        .where(ModelVersionExample.recognition_id.in_(list(recognition_ids)))
        .group_by(ModelVersionExample.model_version_id)
    )
    return {version_id: n for version_id, n in rows}


def record_removed_examples(s: Session, removed: dict[int, int], why: str) -> None:
    """Add to each version's dataset manifest how many of its examples were removed, and
    why (``"removed": {"retention": n}``): the manifest's counts and digest stay those
    of the data it was trained on."""
    for version_id, n in removed.items():
        version = s.get(ModelVersion, version_id, with_for_update=True)
        if version is None:
            continue
        manifest = dict(version.dataset_manifest)
        before = dict(manifest.get("removed", {}))
        before[why] = int(before.get(why, 0)) + n
        manifest["removed"] = before
        version.dataset_manifest = manifest


def version_examples(s: Session, version_id: int) -> set[uuid.UUID]:
    return set(
        s.scalars(
            select(ModelVersionExample.recognition_id).where(
                ModelVersionExample.model_version_id == version_id
            )
        )
    )


@dataclass(frozen=True)
class VersionNode:
    """A version's place in the family tree: its parent, and whether it is marked as
    trained on erased doodles."""

    id: int
    parent_id: int | None
    marked: bool
    artifact_key: str
    artifact_deleted: bool


def version_tree(s: Session) -> dict[int, VersionNode]:
    """Every version by id (a few hundred rows at most: one per training run)."""
    rows = s.execute(
        select(
            ModelVersion.id,
            ModelVersion.parent_id,
            ModelVersion.erased_data_at,
            ModelVersion.artifact_key,
            ModelVersion.metrics,
        )
    )
    return {
        r.id: VersionNode(
            r.id,
            r.parent_id,
            r.erased_data_at is not None,
            r.artifact_key,
            ARTIFACT_DELETED in r.metrics,
        )
        for r in rows
    }


def mark_artifact_deleted(s: Session, version_id: int, note: dict[str, Any]) -> None:
    """Say in the version's metrics that its weights are gone (the row itself stays)."""
    version = s.get(ModelVersion, version_id)
    assert version is not None
    version.metrics = {**version.metrics, ARTIFACT_DELETED: note}
