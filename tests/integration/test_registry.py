"""The model registry: versions, aliases and the history of every alias move."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db import registry
from db.models import AuditLog, ModelAlias, ModelVersion
from db.registry import Alias

CLASSES = ["cat", "dog", "house"]


def _version(s: Session, n: int, **kw: object) -> ModelVersion:
    return registry.register_model_version(
        s, classes=CLASSES, artifact_key=f"models/{n}.pt", checksum=f"{n:064x}", **kw
    )


def test_register_model_version(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory.begin() as s:
        base = _version(s, 1, source="seed")
        assert base.id is not None  # flushed, not committed
        child = _version(
            s,
            2,
            parent_id=base.id,
            metrics={"top1": 0.95},
            dataset_manifest={"sha256": "ab", "counts": {"cat": 10}},
            architecture="quickdraw-cnn-v2",
        )
        ids = (base.id, child.id)

    with db_session_factory() as s:
        got = registry.get_version(s, ids[1])
        assert got is not None
        assert got.parent_id == ids[0]
        assert got.classes == CLASSES
        assert got.metrics == {"top1": 0.95}
        assert got.dataset_manifest["counts"] == {"cat": 10}
        assert got.architecture == "quickdraw-cnn-v2"
        assert got.created_at is not None
        seed = registry.get_version(s, ids[0])
        assert seed is not None
        assert (seed.architecture, seed.metrics, seed.source) == ("quickdraw-cnn-v1", {}, "seed")
        assert [v.id for v in registry.list_versions(s)] == [ids[1], ids[0]]
        assert registry.get_version(s, 999) is None


def test_helpers_do_not_commit(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory() as s:
        v = _version(s, 1)
        registry.move_alias(s, Alias.PRODUCTION, v.id, actor="test")
        s.rollback()
    with db_session_factory() as s:
        assert registry.list_versions(s) == []
        assert registry.get_alias(s, Alias.PRODUCTION) is None
        assert registry.alias_history(s, Alias.PRODUCTION) == []


def test_move_alias_records_history(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory.begin() as s:
        v1, v2, v3 = (_version(s, n).id for n in (1, 2, 3))

    with db_session_factory.begin() as s:
        row = registry.move_alias(s, Alias.PRODUCTION, v1, actor="cli:import", reason="seed")
        assert isinstance(row, ModelAlias)
        assert (row.name, row.model_version_id, row.updated_by) == (
            Alias.PRODUCTION,
            v1,
            "cli:import",
        )
    with db_session_factory.begin() as s:
        registry.move_alias(s, Alias.CANDIDATE, v2, actor="flow:train")
    with db_session_factory.begin() as s:
        registry.move_alias(s, Alias.PRODUCTION, v2, actor="flow:promote", reason="top1 +2%")
    with db_session_factory.begin() as s:
        row = registry.move_alias(s, Alias.PRODUCTION, v3, actor="admin:ana")
    assert row.updated_at is not None  # loaded before commit, readable afterwards

    with db_session_factory() as s:
        current = registry.get_alias(s, Alias.PRODUCTION)
        assert current is not None and current.id == v3
        assert registry.get_alias(s, "nope") is None

        history = registry.alias_history(s, Alias.PRODUCTION)
        assert [(h.from_version_id, h.to_version_id, h.actor, h.reason) for h in history] == [
            (v2, v3, "admin:ana", ""),
            (v1, v2, "flow:promote", "top1 +2%"),
            (None, v1, "cli:import", "seed"),
        ]
        assert all(h.alias == Alias.PRODUCTION and h.moved_at is not None for h in history)
        assert [
            (h.from_version_id, h.to_version_id) for h in registry.alias_history(s, Alias.CANDIDATE)
        ] == [(None, v2)]
        assert registry.aliases_of(s) == {v2: [Alias.CANDIDATE], v3: [Alias.PRODUCTION]}


def test_aliases_of_groups_names(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory.begin() as s:
        v = _version(s, 1)
        for name in (Alias.PRODUCTION, Alias.CANDIDATE, "baseline"):
            registry.move_alias(s, name, v.id, actor="test")
    with db_session_factory() as s:
        assert registry.aliases_of(s) == {v.id: ["baseline", Alias.CANDIDATE, Alias.PRODUCTION]}


def test_move_alias_to_missing_version(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory() as s, pytest.raises(registry.UnknownModelVersion):
        registry.move_alias(s, Alias.PRODUCTION, 12345, actor="test")


@pytest.mark.parametrize("existing", [True, False], ids=["existing-alias", "new-alias"])
def test_concurrent_moves_serialise(
    db_session_factory: sessionmaker[Session], existing: bool
) -> None:
    """Two threads move one alias at once: both land in history, chained from/to.

    Thread A moves the alias and keeps its transaction open for a moment; thread B moves
    it meanwhile. B must wait for A's commit and record A's version as its `from`
    (without the row lock it would read the old version: a lost update).
    """
    with db_session_factory.begin() as s:
        v0, v1, v2 = (_version(s, n).id for n in (0, 1, 2))
        if existing:
            registry.move_alias(s, Alias.PRODUCTION, v0, actor="seed")

    a_moved = threading.Event()
    errors: list[BaseException] = []

    def thread_a() -> None:
        try:
            with db_session_factory.begin() as s:
                registry.move_alias(s, Alias.PRODUCTION, v1, actor="worker-a")
                a_moved.set()
                time.sleep(0.5)  # B is now blocked on the alias row
        except BaseException as exc:
            errors.append(exc)
        finally:
            a_moved.set()

    def thread_b() -> None:
        try:
            assert a_moved.wait(timeout=10)
            with db_session_factory.begin() as s:
                registry.move_alias(s, Alias.PRODUCTION, v2, actor="worker-b")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []

    with db_session_factory() as s:
        history = registry.alias_history(s, Alias.PRODUCTION)
        moves = [(h.from_version_id, h.to_version_id, h.actor) for h in history]
        expected = [(v1, v2, "worker-b"), ((v0 if existing else None), v1, "worker-a")]
        if existing:
            expected.append((None, v0, "seed"))
        assert moves == expected
        current = registry.get_alias(s, Alias.PRODUCTION)
        assert current is not None and current.id == v2


def _production(s: Session) -> int | None:
    current = registry.get_alias(s, Alias.PRODUCTION)
    return None if current is None else current.id


def _audit_rows(s: Session) -> list[tuple[str, str, int | None, int]]:
    rows = s.scalars(select(AuditLog).order_by(AuditLog.id))
    return [(r.actor, r.action, r.details["from_version"], r.details["to_version"]) for r in rows]


def test_promote_moves_production_and_audits(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory.begin() as s:
        v1, v2 = (_version(s, n).id for n in (1, 2))
        registry.move_alias(s, Alias.PRODUCTION, v1, actor="seed")
    with db_session_factory.begin() as s:
        got = registry.promote(s, v2, actor="cli:ana", reason="better top-1")
        assert got.id == v2
    with db_session_factory() as s:
        assert _production(s) == v2
        move = registry.latest_move(s, Alias.PRODUCTION)
        assert move is not None
        assert (move.from_version_id, move.to_version_id, move.actor, move.reason) == (
            v1,
            v2,
            "cli:ana",
            "better top-1",
        )
        assert _audit_rows(s) == [("cli:ana", "model.promote", v1, v2)]


def test_promote_creates_production_and_ignores_a_no_op(
    db_session_factory: sessionmaker[Session],
) -> None:
    with db_session_factory.begin() as s:
        v1 = _version(s, 1).id
        registry.promote(s, v1, actor="t")
    with db_session_factory.begin() as s:
        registry.promote(s, v1, actor="t")  # already there: nothing recorded
    with db_session_factory() as s:
        assert _production(s) == v1
        assert [
            (h.from_version_id, h.to_version_id)
            for h in registry.alias_history(s, Alias.PRODUCTION)
        ] == [(None, v1)]
        assert len(_audit_rows(s)) == 1


def test_promote_unknown_version_changes_nothing(
    db_session_factory: sessionmaker[Session],
) -> None:
    with db_session_factory.begin() as s:
        v1 = _version(s, 1).id
        registry.promote(s, v1, actor="t")
    with db_session_factory() as s, pytest.raises(registry.UnknownModelVersion):
        registry.promote(s, v1 + 100, actor="t")
    with db_session_factory() as s:
        assert _production(s) == v1


def test_rollback_walks_back_one_move_per_call(
    db_session_factory: sessionmaker[Session],
) -> None:
    with db_session_factory.begin() as s:
        v1, v2, v3, v4 = (_version(s, n).id for n in (1, 2, 3, 4))
    for v in (v1, v2, v3):
        with db_session_factory.begin() as s:
            registry.promote(s, v, actor="flow:gate")

    with db_session_factory.begin() as s:
        assert registry.rollback(s, actor="admin:x", reason="bad words").id == v2
    with db_session_factory.begin() as s:
        assert registry.rollback(s, actor="admin:x").id == v1
    with db_session_factory() as s:
        assert _production(s) == v1
        with pytest.raises(registry.NothingToRollBack):
            registry.rollback(s, actor="admin:x")

    # A new promotion is undone by the next rollback, back to where it started.
    with db_session_factory.begin() as s:
        registry.promote(s, v4, actor="cli:bo")
    with db_session_factory.begin() as s:
        assert registry.rollback(s, actor="cli:bo").id == v1

    with db_session_factory() as s:
        history = registry.alias_history(s, Alias.PRODUCTION)
        moves = [(h.from_version_id, h.to_version_id, h.actor) for h in history]
        assert moves == [
            (v4, v1, "cli:bo"),
            (v1, v4, "cli:bo"),
            (v2, v1, "admin:x"),
            (v3, v2, "admin:x"),
            (v2, v3, "flow:gate"),
            (v1, v2, "flow:gate"),
            (None, v1, "flow:gate"),
        ]
        ids = [h.id for h in history]
        assert history[0].reason == f"rollback of #{ids[1]}"
        assert history[3].reason == f"rollback of #{ids[4]}: bad words"
        assert [(a, act) for a, act, _, _ in _audit_rows(s)] == [
            ("flow:gate", "model.promote"),
            ("flow:gate", "model.promote"),
            ("flow:gate", "model.promote"),
            ("admin:x", "model.rollback"),
            ("admin:x", "model.rollback"),
            ("cli:bo", "model.promote"),
            ("cli:bo", "model.rollback"),
        ]


def test_rollback_without_history_is_refused(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory() as s, pytest.raises(registry.NothingToRollBack):
        registry.rollback(s, actor="t")
    with db_session_factory.begin() as s:
        registry.promote(s, _version(s, 1).id, actor="t")
    with db_session_factory() as s, pytest.raises(registry.NothingToRollBack, match="earlier"):
        registry.rollback(s, actor="t")


def test_a_hand_typed_rollback_reason_undoes_nothing(
    db_session_factory: sessionmaker[Session],
) -> None:
    with db_session_factory.begin() as s:
        v1, v2, v3 = (_version(s, n).id for n in (1, 2, 3))
        registry.promote(s, v1, actor="t")
        registry.promote(s, v2, actor="t")
        first = registry.latest_move(s, Alias.PRODUCTION)
        assert first is not None
        registry.promote(s, v3, actor="t", reason=f"rollback of #{first.id}")
    with db_session_factory.begin() as s:
        assert registry.rollback(s, actor="t").id == v2
