"""Model lineage on real Postgres and S3: what a version was trained on, where the next
fine-tune starts after an erasure, the receipts that name a replacement, and the
deletion of weights trained on erased doodles (services.lineage)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core.storage import ObjectNotFound
from db import lineage as db_lineage
from db import registry
from db.datasets import ImportedDrawing, add_imports, import_id
from db.models import Erasure, ErasureStatus, InputFormat, ModelVersion, Recognition
from db.registry import Alias
from services import artifacts, lineage
from services.connections import Connections
from services.errors import ArtifactDeleted, NoCleanAncestor
from services.models import add_version

ACTOR = "test:lineage"
CLASSES = ["cat", "dog"]


@pytest.fixture
def connections(settings) -> Iterator[Connections]:
    c = Connections(settings)
    yield c
    c.close()


def _doodles(c: Connections, n: int, tag: str) -> list[uuid.UUID]:
    drawings = [
        ImportedDrawing(f"test:{tag}:{i}", CLASSES[i % 2], bytes([i]) * 784, InputFormat.bitmap)
        for i in range(n)
    ]
    with c.sessions.begin() as s:
        add_imports(s, drawings, ACTOR)
    return [import_id(d.external_id) for d in drawings]


def _version(
    c: Connections,
    weights: bytes,
    parent: int | None = None,
    trained_on: list[uuid.UUID] | None = None,
    alias: str | None = None,
) -> int:
    version_id, _ = add_version(
        c.sessions,
        c.storage,
        weights,
        classes=CLASSES,
        source="test",
        actor=ACTOR,
        reason="test",
        alias=alias,
        parent_id=parent,
        trained_on=trained_on or [],
    )
    return version_id


def _mark(c: Connections, *version_ids: int) -> None:
    with c.sessions.begin() as s:
        for v in version_ids:
            s.get(ModelVersion, v).erased_data_at = dt.datetime.now(dt.UTC)


def _erasure(c: Connections, versions: list[int], status: str = ErasureStatus.done) -> str:
    with c.sessions.begin() as s:
        e = Erasure(player_ref="ref", status=str(status), model_versions=versions)
        s.add(e)
        s.flush()
        return str(e.public_id)


def _key(c: Connections, version_id: int) -> str:
    with c.sessions() as s:
        return s.get(ModelVersion, version_id).artifact_key


def test_a_new_version_records_the_recognitions_it_was_trained_on(connections):
    ids = _doodles(connections, 5, "a")
    seed = _version(connections, b"seed")
    child = _version(connections, b"child", parent=seed, trained_on=ids[:3])

    with connections.sessions() as s:
        assert db_lineage.version_examples(s, child) == set(ids[:3])
        assert db_lineage.version_examples(s, seed) == set()


def test_a_version_trained_on_a_recognition_that_is_gone_is_not_registered(connections):
    ghost = uuid.uuid4()  # e.g. erased while the candidate was training

    with pytest.raises(IntegrityError, match="model_version_examples"):
        _version(connections, b"w", trained_on=[ghost])
    with connections.sessions() as s:
        assert s.scalars(select(ModelVersion)).all() == []


def test_an_unmarked_production_is_its_own_clean_start(connections):
    seed = _version(connections, b"seed")
    child = _version(connections, b"child", parent=seed)

    start = lineage.clean_start(connections.sessions, child)

    assert (start.base_id, start.tainted, start.replaces) == (child, [], False)


def test_the_clean_start_is_the_nearest_ancestor_above_every_mark(connections):
    seed = _version(connections, b"seed")
    v2 = _version(connections, b"2", parent=seed)
    v3 = _version(connections, b"3", parent=v2)
    v4 = _version(connections, b"4", parent=v3)  # unmarked, but v3's weights are in it
    _mark(connections, v2, v3)
    receipt = _erasure(connections, [v3])
    _erasure(connections, [v3], status=ErasureStatus.pending)  # not done: not named

    start = lineage.clean_start(connections.sessions, v4)

    assert start.base_id == seed
    assert start.tainted == [v4, v3, v2]
    assert start.erasures == [receipt]
    assert f"v{v4} was trained on erased doodles" in start.note()
    assert receipt in start.note()


def test_a_lineage_marked_down_to_its_root_has_no_clean_start(connections):
    root = _version(connections, b"root")
    child = _version(connections, b"child", parent=root)
    _mark(connections, root)

    with pytest.raises(NoCleanAncestor, match="import a model"):
        lineage.clean_start(connections.sessions, child)


def test_tainted_means_marked_or_descending_from_a_mark(connections):
    seed = _version(connections, b"seed")
    v2 = _version(connections, b"2", parent=seed)
    v3 = _version(connections, b"3", parent=v2)
    _version(connections, b"4", parent=seed)  # a sibling: clean
    _mark(connections, v2)

    with connections.sessions() as s:
        assert lineage.tainted(db_lineage.version_tree(s)) == {v2, v3}


def test_the_replacement_is_named_on_done_receipts_of_the_replaced_versions(connections):
    seed = _version(connections, b"seed")
    v2 = _version(connections, b"2", parent=seed)
    other = _version(connections, b"3", parent=seed)
    named = _erasure(connections, [v2])
    unrelated = _erasure(connections, [other])
    pending = _erasure(connections, [v2], status=ErasureStatus.pending)

    assert lineage.record_replacement(connections.sessions, [v2], seed) == [named]

    with connections.sessions() as s:
        by_id = {str(e.public_id): e.replaced_by_version for e in s.scalars(select(Erasure))}
    assert by_id == {named: seed, unrelated: None, pending: None}
    # Once named, a receipt keeps its replacement.
    assert lineage.record_replacement(connections.sessions, [v2], other) == []


def _promote(c: Connections, version_id: int) -> None:
    with c.sessions.begin() as s:
        registry.promote(s, version_id, actor=ACTOR, reason="test")


def test_tainted_weights_go_unless_an_alias_or_its_recent_history_needs_them(connections):
    seed = _version(connections, b"seed", alias=Alias.PRODUCTION)
    old = _version(connections, b"old", parent=seed)  # marked, forgotten: goes
    recent = _version(connections, b"recent", parent=old)  # tainted via old, in history
    clean = _version(connections, b"clean", parent=seed)
    candidate = _version(connections, b"cand", parent=seed, alias=Alias.CANDIDATE)
    twin = _version(connections, b"clean", parent=seed)  # same weights (same object) as clean
    _mark(connections, old, candidate, twin)
    _promote(connections, recent)
    _promote(connections, clean)  # production's last move: recent -> clean

    deleted = lineage.delete_tainted_weights(connections.sessions, connections.storage, history=1)

    assert deleted == [old, twin]
    with pytest.raises(ObjectNotFound):
        connections.storage.get(_key(connections, old))
    for kept in (seed, recent, clean, candidate):
        assert connections.storage.exists(_key(connections, kept))
    assert _key(connections, twin) == _key(connections, clean)  # shared: left in place
    with connections.sessions() as s:
        note = s.get(ModelVersion, old).metrics[db_lineage.ARTIFACT_DELETED]
        assert note["reason"] == "trained on erased doodles"
        assert db_lineage.ARTIFACT_DELETED not in s.get(ModelVersion, recent).metrics
    # Loading a version whose weights are gone says so (and the row is still there).
    with pytest.raises(ArtifactDeleted, match=f"model version {old}: its weights were deleted"):
        artifacts.load_version(connections.sessions, connections.storage, old)
    # Done once; with a shorter memory the version only history kept goes too.
    assert (
        lineage.delete_tainted_weights(connections.sessions, connections.storage, history=1) == []
    )
    assert lineage.delete_tainted_weights(connections.sessions, connections.storage, history=0) == [
        recent
    ]


def test_erased_recognitions_leave_the_lineage_with_them(connections):
    ids = _doodles(connections, 4, "b")
    version = _version(connections, b"v", trained_on=ids)
    with connections.sessions.begin() as s:
        s.execute(delete(Recognition).where(Recognition.id.in_(ids[:2])))

    with connections.sessions() as s:
        assert db_lineage.version_examples(s, version) == set(ids[2:])
