"""Model artifacts: the one way weights are stored, and the one way a version is loaded.

Stored under a key derived from the weights' sha256 (`core.keys`), so storing the same
weights twice writes one object. Loaded from the registry row (key, checksum, classes)
through `ml.artifacts.load_verified`, which refuses weights whose checksum differs. The
workers' model cache, the flows and `doodle eval` all load this way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from core import keys
from core.storage import ObjectStorage
from db import lineage as db_lineage
from db import registry
from db.models import ModelVersion
from ml.artifacts import load_verified
from ml.network import QuickDrawNet
from services.errors import ArtifactDeleted, NoRegistry, UnknownVersion

CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class StoredArtifact:
    key: str
    checksum: str  # sha256 of the weights, hex


@dataclass(frozen=True)
class VersionRef:
    """What loading a version needs from its registry row."""

    version_id: int
    artifact_key: str
    checksum: str
    classes: list[str]


def store_artifact(storage: ObjectStorage, weights: bytes) -> StoredArtifact:
    checksum = hashlib.sha256(weights).hexdigest()
    key = keys.model_artifact_key(checksum)
    storage.put(key, weights, CONTENT_TYPE)
    return StoredArtifact(key, checksum)


def _ref(version: ModelVersion) -> VersionRef:
    return VersionRef(version.id, version.artifact_key, version.checksum, list(version.classes))


def version_ref(sessions: sessionmaker[Session], version_id: int) -> VersionRef:
    try:
        with sessions() as s:
            version = registry.get_version(s, version_id)
            if version is None:
                raise UnknownVersion(f"no model version {version_id}")
            if db_lineage.ARTIFACT_DELETED in version.metrics:
                raise ArtifactDeleted(
                    f"model version {version_id}: its weights were deleted "
                    f"({version.metrics[db_lineage.ARTIFACT_DELETED].get('reason', '')})"
                )
            return _ref(version)
    except ProgrammingError as exc:
        raise NoRegistry("the database has no model registry (never migrated)") from exc


def alias_ref(sessions: sessionmaker[Session], alias: str) -> VersionRef | None:
    """The version `alias` points at, None if no version carries it."""
    try:
        with sessions() as s:
            version = registry.get_alias(s, alias)
            return None if version is None else _ref(version)
    except ProgrammingError as exc:
        raise NoRegistry("the database has no model registry (never migrated)") from exc


def load(storage: ObjectStorage, ref: VersionRef, cache_dir: Path | None = None) -> QuickDrawNet:
    """The network of `ref`; `cache_dir` keeps a local copy of the weights by checksum."""
    return load_verified(storage, ref.artifact_key, ref.checksum, ref.classes, cache_dir)


def load_version(
    sessions: sessionmaker[Session], storage: ObjectStorage, version_id: int
) -> tuple[QuickDrawNet, list[str]]:
    """The network of a version and its classes, in output order."""
    ref = version_ref(sessions, version_id)
    return load(storage, ref), ref.classes
