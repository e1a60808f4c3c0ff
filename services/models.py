"""New model versions: weights stored, registered, and optionally given an alias.

`import_model` is what `doodle models import` (and `make run`'s seed import) does:
weights from outside are checked first (distinct class names, the weights load as a
network with that many outputs). `add_version` is the part the fine-tune flow shares
with it: its weights come from training, so there is nothing to check, and it records
the recognitions they were trained on (the lineage an erasure follows).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.storage import ObjectStorage
from db import lineage as db_lineage
from db import registry
from ml.network import load_model
from services.artifacts import store_artifact
from services.errors import InvalidClasses, InvalidModel


@dataclass(frozen=True)
class ImportResult:
    version: int
    alias: str | None
    imported: bool  # False: `if_missing` found the alias already set, nothing was done
    checksum: str | None = None

    def as_dict(self) -> dict[str, object]:
        """As `doodle models import` prints it."""
        body: dict[str, object] = {
            "version": self.version,
            "alias": self.alias,
            "imported": self.imported,
        }
        if self.imported:
            body["checksum"] = self.checksum
        return body


def add_version(
    sessions: sessionmaker[Session],
    storage: ObjectStorage,
    weights: bytes,
    *,
    classes: Sequence[str],
    source: str,
    actor: str,
    reason: str,
    alias: str | None = None,
    parent_id: int | None = None,
    metrics: dict[str, Any] | None = None,
    dataset_manifest: dict[str, Any] | None = None,
    trained_on: Sequence[uuid.UUID] = (),
) -> tuple[int, str]:
    """Store the weights, register them with `trained_on` (the recognitions they were
    trained on) and move `alias` to them, in one transaction.

    Returns (version id, checksum). The artifact is written first: a version row never
    points at weights that are not stored.
    """
    artifact = store_artifact(storage, weights)
    with sessions.begin() as s:
        version = registry.register_model_version(
            s,
            classes=classes,
            artifact_key=artifact.key,
            checksum=artifact.checksum,
            parent_id=parent_id,
            metrics=metrics,
            dataset_manifest=dataset_manifest,
            source=source,
        )
        db_lineage.add_version_examples(s, version.id, trained_on)
        if alias:
            registry.move_alias(s, alias, version.id, actor=actor, reason=reason)
        return version.id, artifact.checksum


def check_classes(classes: Sequence[str]) -> None:
    if len(set(classes)) != len(classes) or not all(classes):
        raise InvalidClasses("class names must be non-empty and distinct")


def check_weights(weights: bytes, classes: Sequence[str]) -> None:
    try:
        load_model(weights, len(classes))
    except Exception as exc:  # any failure to load means: not a network of these classes
        raise InvalidModel(f"weights do not load as a {len(classes)}-class network: {exc}") from exc


def import_model(
    sessions: sessionmaker[Session],
    storage: ObjectStorage,
    weights: bytes,
    classes: Sequence[str],
    *,
    source: str,
    actor: str,
    alias: str | None = None,
    if_missing: bool = False,
) -> ImportResult:
    """Register weights from outside as a new model version, checked first.

    With `if_missing`, an alias that already points at a version leaves everything as
    it is (what `make run` wants on every start). Raises InvalidClasses, InvalidModel.
    """
    check_classes(classes)
    if if_missing and alias:
        with sessions() as s:
            existing = registry.get_alias(s, alias)
            if existing is not None:
                return ImportResult(existing.id, alias, imported=False)
    check_weights(weights, classes)
    version_id, checksum = add_version(
        sessions,
        storage,
        weights,
        classes=classes,
        source=source,
        actor=actor,
        reason=f"import {source}",
        alias=alias,
    )
    return ImportResult(version_id, alias, imported=True, checksum=checksum)
