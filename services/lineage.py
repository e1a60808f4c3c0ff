"""Model lineage after an erasure: where the next fine-tune starts, which receipts name
the version that replaced theirs, and which weights trained on erased doodles can go.

A version is *tainted* when it is marked (`model_versions.erased_data_at`: trained on
doodles since erased) or descends from a marked one: a fine-tune starts from its
parent's weights, so it carries what the parent learnt. The *clean start* for the next
fine-tune is the nearest ancestor of production (production itself when clean) that
is not tainted; the seed, imported from outside, has no lineage and is never marked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.storage import ObjectStorage
from db import lineage as db_lineage
from db import registry
from db.lineage import VersionNode
from db.models import Erasure, ErasureStatus
from services.errors import NoCleanAncestor


def tainted(tree: dict[int, VersionNode]) -> set[int]:
    """The marked versions and every version descending from one."""
    verdict: dict[int, bool] = {}

    def is_tainted(version_id: int) -> bool:
        path: list[int] = []
        current: int | None = version_id
        result = False
        while current is not None and current in tree:
            if current in verdict:
                result = verdict[current]
                break
            path.append(current)
            if tree[current].marked:
                result = True
                break
            current = tree[current].parent_id
        # Everything below a tainted version is tainted; a clean walk to the root is clean.
        for v in path:
            verdict[v] = result
        return result

    return {v for v in tree if is_tainted(v)}


@dataclass(frozen=True)
class CleanStart:
    production_id: int
    base_id: int  # the nearest version of production's lineage that is not tainted
    # Production and its ancestors above base_id, newest first (empty: production is clean).
    tainted: list[int] = field(default_factory=list)
    erasures: list[str] = field(default_factory=list)  # done erasures naming one of them

    @property
    def replaces(self) -> bool:
        return bool(self.tainted)

    def note(self) -> str:
        """Why production is being replaced, for the alias history and the audit log."""
        named = ", ".join(self.erasures) or "unrecorded"
        return (
            f"erasure: v{self.production_id} was trained on erased doodles "
            f"(lineage v{', v'.join(map(str, self.tainted))}; erasures {named})"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "tainted_versions": self.tainted,
            "clean_ancestor": self.base_id,
            "erasures": self.erasures,
        }


def _erasures_naming(
    s: Session, versions: Sequence[int], *, unreplaced: bool = False
) -> list[Erasure]:
    if not versions:
        return []
    stmt = select(Erasure).where(
        Erasure.status == ErasureStatus.done.value,
        or_(*(Erasure.model_versions.contains([v]) for v in versions)),
    )
    if unreplaced:
        stmt = stmt.where(Erasure.replaced_by_version.is_(None))
    return list(s.scalars(stmt.order_by(Erasure.id)))


def clean_start(sessions: sessionmaker[Session], production_id: int) -> CleanStart:
    """Where the next fine-tune starts. Raises NoCleanAncestor if the whole lineage,
    root included, is tainted (only possible for a root trained here, never for an
    imported model)."""
    with sessions() as s:
        tree = db_lineage.version_tree(s)
        chain: list[int] = []
        current: int | None = production_id
        while current is not None and current in tree:
            chain.append(current)
            current = tree[current].parent_id
        marked = [i for i, v in enumerate(chain) if tree[v].marked]
        if not marked:
            return CleanStart(production_id, production_id)
        last = marked[-1]
        if last == len(chain) - 1:
            raise NoCleanAncestor(
                f"every version of v{production_id}'s lineage was trained on erased doodles: "
                "import a model (`doodle models import`) and promote it"
            )
        dirty = chain[: last + 1]
        erasures = [str(e.public_id) for e in _erasures_naming(s, dirty)]
        return CleanStart(production_id, chain[last + 1], dirty, erasures)


def record_replacement(
    sessions: sessionmaker[Session], replaced: Sequence[int], by: int
) -> list[str]:
    """Name `by` on the receipts of the done erasures whose versions include one of
    `replaced`; returns their public ids."""
    with sessions.begin() as s:
        receipts = _erasures_naming(s, replaced, unreplaced=True)
        if receipts:
            s.execute(
                update(Erasure)
                .where(Erasure.id.in_([e.id for e in receipts]))
                .values(replaced_by_version=by)
            )
        return [str(e.public_id) for e in receipts]


def _doomed(tree: dict[int, VersionNode], keep: Iterable[int]) -> list[int]:
    kept = set(keep)
    return sorted(v for v in tainted(tree) if v not in kept and not tree[v].artifact_deleted)


def delete_tainted_weights(
    sessions: sessionmaker[Session], storage: ObjectStorage, *, history: int
) -> list[int]:
    """Delete the weights of tainted versions that no alias points at and that none of
    the last `history` moves of any alias names; returns those versions' ids.

    The version rows stay, their metrics saying the weights are gone (loading one says
    so: services.errors.ArtifactDeleted). Weights are stored by checksum, so an object
    that a kept version shares is left in place. The alias rows stay locked meanwhile:
    nothing can be promoted to a version whose weights are being deleted.
    """
    with sessions.begin() as s:
        aliased = registry.lock_aliased_versions(s)
        recent = registry.recent_alias_versions(s, history)
        tree = db_lineage.version_tree(s)
        doomed = _doomed(tree, aliased | recent)
        kept_keys = {
            n.artifact_key for n in tree.values() if n.id not in doomed and not n.artifact_deleted
        }
        now = dt.datetime.now(dt.UTC).isoformat()
        for version_id in doomed:
            key = tree[version_id].artifact_key
            if key not in kept_keys:
                storage.delete(key)  # deleting a missing object succeeds: safe to retry
            db_lineage.mark_artifact_deleted(
                s, version_id, {"at": now, "reason": "trained on erased doodles"}
            )
        return doomed
