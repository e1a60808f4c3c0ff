"""The model registry as operators see it: list and describe versions, promote, roll back.

What the admin API and `doodle models` call. It never imports the model code (the API
must not load torch); loading and importing weights are `services.artifacts` and
`services.models`. Results are plain data, readable after the transaction has ended.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db import registry
from db.models import ModelVersion
from db.registry import Alias
from services.errors import NothingToRollBack, UnknownVersion


@dataclass(frozen=True)
class VersionInfo:
    id: int
    aliases: list[str]
    classes: list[str]
    metrics: dict[str, Any]
    parent_id: int | None
    created_at: dt.datetime
    architecture: str
    source: str
    checksum: str
    dataset_manifest: dict[str, Any]


@dataclass(frozen=True)
class AliasMove:
    """What a promote or a rollback did to `alias`."""

    alias: str
    previous: int | None  # where the alias pointed before (read under the alias lock)
    version: VersionInfo  # where it points now
    move: dict[str, Any] | None  # the history row written; None if nothing moved

    @property
    def moved(self) -> bool:
        return self.move is not None


def _info(v: ModelVersion, aliases: dict[int, list[str]]) -> VersionInfo:
    return VersionInfo(
        id=v.id,
        aliases=aliases.get(v.id, []),
        classes=list(v.classes),
        metrics=v.metrics,
        parent_id=v.parent_id,
        created_at=v.created_at,
        architecture=v.architecture,
        source=v.source,
        checksum=v.checksum,
        dataset_manifest=v.dataset_manifest,
    )


def list_versions(sessions: sessionmaker[Session]) -> list[VersionInfo]:
    """Every version, newest first, with the aliases pointing at it."""
    with sessions() as s:
        aliases = registry.aliases_of(s)
        return [_info(v, aliases) for v in registry.list_versions(s)]


def describe_version(sessions: sessionmaker[Session], version_id: int) -> VersionInfo:
    with sessions() as s:
        version = registry.get_version(s, version_id)
        if version is None:
            raise UnknownVersion(f"model version {version_id} does not exist")
        return _info(version, registry.aliases_of(s))


def alias_history(sessions: sessionmaker[Session], alias: str) -> list[dict[str, Any]]:
    """Every move of `alias`, newest first (empty for an alias that never existed)."""
    with sessions() as s:
        return [registry.move_as_dict(move) for move in registry.alias_history(s, alias)]


def _current_id(s: Session, alias: str) -> int | None:
    current = registry.get_alias(s, alias)
    return None if current is None else current.id


def _move(s: Session, alias: str, previous: int | None, version: ModelVersion) -> AliasMove:
    row = registry.latest_move(s, alias) if previous != version.id else None
    return AliasMove(
        alias=alias,
        # The history row's own `from` was read under the alias lock: exact under races.
        previous=previous if row is None else row.from_version_id,
        version=_info(version, registry.aliases_of(s)),
        move=None if row is None else registry.move_as_dict(row),
    )


def promote(
    sessions: sessionmaker[Session], version_id: int, *, actor: str, reason: str = ""
) -> AliasMove:
    """Point `production` at `version_id` (a no-op, recorded nowhere, if it is there)."""
    with sessions.begin() as s:
        previous = _current_id(s, Alias.PRODUCTION)
        try:
            version = registry.promote(s, version_id, actor=actor, reason=reason)
        except registry.UnknownModelVersion as exc:
            raise UnknownVersion(str(exc)) from None
        return _move(s, Alias.PRODUCTION, previous, version)


def rollback(sessions: sessionmaker[Session], *, actor: str, reason: str = "") -> AliasMove:
    """Move `production` back one step (see db.registry for repeated rollbacks)."""
    with sessions.begin() as s:
        previous = _current_id(s, Alias.PRODUCTION)
        try:
            version = registry.rollback(s, actor=actor, reason=reason)
        except registry.NothingToRollBack as exc:
            raise NothingToRollBack(str(exc)) from None
        return _move(s, Alias.PRODUCTION, previous, version)


def add_metrics(sessions: sessionmaker[Session], version_id: int, metrics: dict[str, Any]) -> None:
    """Keep more figures with a version: `metrics`' keys replace the version's same keys."""
    with sessions.begin() as s:
        version = registry.get_version(s, version_id)
        if version is None:
            raise UnknownVersion(f"model version {version_id} does not exist")
        version.metrics = {**version.metrics, **metrics}
