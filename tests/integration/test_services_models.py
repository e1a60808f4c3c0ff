"""services.models and services.registry on real Postgres and S3: importing a version,
promoting, rolling back, listing; each refusal is a domain error of services.errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from core import keys
from db import registry as registry_rows
from db.models import ModelVersion
from db.registry import Alias
from ml.network import seed_classes, seed_weights_path
from services import registry
from services.connections import Connections
from services.errors import (
    InvalidClasses,
    InvalidModel,
    NothingToRollBack,
    UnknownVersion,
)
from services.models import import_model

ACTOR = "test:services"


@pytest.fixture
def connections(settings) -> Iterator[Connections]:
    c = Connections(settings)
    yield c
    c.close()


@pytest.fixture
def weights() -> bytes:
    return seed_weights_path().read_bytes()


def _import(c: Connections, weights: bytes, **kwargs):
    kwargs.setdefault("source", "test")
    return import_model(c.sessions, c.storage, weights, seed_classes(), actor=ACTOR, **kwargs)


def _versions(c: Connections) -> int:
    with c.sessions() as s:
        return s.scalar(select(func.count()).select_from(ModelVersion)) or 0


def test_import_stores_the_weights_registers_them_and_moves_the_alias(connections, weights):
    result = _import(connections, weights, alias=Alias.PRODUCTION, source="seed.pt")

    checksum = hashlib.sha256(weights).hexdigest()
    assert result.as_dict() == {
        "version": result.version,
        "alias": Alias.PRODUCTION,
        "imported": True,
        "checksum": checksum,
    }
    assert connections.storage.get(keys.model_artifact_key(checksum)) == weights
    with connections.sessions() as s:
        version = registry_rows.get_alias(s, Alias.PRODUCTION)
        assert version is not None and version.id == result.version
        assert (version.classes, version.source) == (seed_classes(), "seed.pt")
        (move,) = registry_rows.alias_history(s, Alias.PRODUCTION)
        assert (move.actor, move.reason) == (ACTOR, "import seed.pt")


def test_import_if_missing_leaves_an_existing_alias_alone(connections, weights):
    first = _import(connections, weights, alias=Alias.PRODUCTION)

    again = _import(connections, weights, alias=Alias.PRODUCTION, if_missing=True)

    assert again.as_dict() == {
        "version": first.version,
        "alias": Alias.PRODUCTION,
        "imported": False,
    }
    assert _versions(connections) == 1


def test_import_without_alias_moves_none(connections, weights):
    result = _import(connections, weights)
    assert result.alias is None and result.imported
    assert registry.list_versions(connections.sessions)[0].aliases == []


@pytest.mark.parametrize("classes", [["cup", "cup"], ["cup", ""]])
def test_import_refuses_class_names_that_are_empty_or_repeated(connections, weights, classes):
    with pytest.raises(InvalidClasses, match="non-empty and distinct"):
        import_model(
            connections.sessions, connections.storage, weights, classes, source="x", actor=ACTOR
        )
    assert _versions(connections) == 0


def test_import_refuses_weights_that_do_not_fit_the_classes(connections, weights):
    with pytest.raises(InvalidModel, match="do not load as a 3-class network"):
        import_model(
            connections.sessions,
            connections.storage,
            weights,
            ["cup", "hat", "tree"],
            source="x",
            actor=ACTOR,
        )
    assert _versions(connections) == 0
    assert list(connections.storage.list("models/")) == []


def test_promote_and_rollback_report_each_move(connections, weights):
    v1 = _import(connections, weights, alias=Alias.PRODUCTION).version
    v2 = _import(connections, weights).version

    promoted = registry.promote(connections.sessions, v2, actor=ACTOR, reason="better")
    assert (promoted.alias, promoted.previous, promoted.version.id) == (Alias.PRODUCTION, v1, v2)
    assert promoted.moved and promoted.move is not None
    assert (promoted.move["from"], promoted.move["to"], promoted.move["reason"]) == (
        v1,
        v2,
        "better",
    )
    assert promoted.version.aliases == [Alias.PRODUCTION]

    same = registry.promote(connections.sessions, v2, actor=ACTOR)
    assert (same.previous, same.version.id, same.moved, same.move) == (v2, v2, False, None)

    back = registry.rollback(connections.sessions, actor=ACTOR)
    assert (back.previous, back.version.id, back.moved) == (v2, v1, True)
    assert back.move is not None and back.move["reason"].startswith("rollback of #")

    with pytest.raises(NothingToRollBack, match="no earlier version"):
        registry.rollback(connections.sessions, actor=ACTOR)


def test_unknown_versions_and_aliases_are_domain_errors(connections):
    with pytest.raises(UnknownVersion, match="model version 999 does not exist"):
        registry.promote(connections.sessions, 999, actor=ACTOR)
    with pytest.raises(UnknownVersion):
        registry.describe_version(connections.sessions, 999)
    with pytest.raises(NothingToRollBack, match="alias 'production' does not exist"):
        registry.rollback(connections.sessions, actor=ACTOR)
    assert registry.alias_history(connections.sessions, "never-existed") == []


def test_list_and_describe_show_aliases_newest_first(connections, weights):
    v1 = _import(connections, weights, alias=Alias.PRODUCTION).version
    v2 = _import(connections, weights, alias=Alias.CANDIDATE).version

    listed = registry.list_versions(connections.sessions)

    assert [(v.id, v.aliases) for v in listed] == [
        (v2, [Alias.CANDIDATE]),
        (v1, [Alias.PRODUCTION]),
    ]
    described = registry.describe_version(connections.sessions, v1)
    assert described == listed[1]
    assert described.checksum == hashlib.sha256(weights).hexdigest()


def test_add_metrics_keeps_the_other_figures(connections, weights):
    version = _import(connections, weights).version
    registry.add_metrics(connections.sessions, version, {"golden": {"top1": 0.5}})
    registry.add_metrics(connections.sessions, version, {"gate": {"promote": False}})
    registry.add_metrics(connections.sessions, version, {"golden": {"top1": 0.75}})

    described = registry.describe_version(connections.sessions, version)

    assert described.metrics == {"golden": {"top1": 0.75}, "gate": {"promote": False}}
    with pytest.raises(UnknownVersion):
        registry.add_metrics(connections.sessions, 999, {})
