"""`doodle flows run flywheel` after an erasure: production was trained on doodles since
erased, and after one cycle nothing in service was, even through a parent's weights.

Production is made by hand (the seed's weights, nudged, registered as its child and
trained on some doodles); the erasure is what helper services do to the stores: the
doodles' rows gone, the version marked, a done receipt naming it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
import torch
from click.testing import CliRunner
from sqlalchemy import delete, select

from cli.main import cli
from core.settings import PROJECT_ROOT
from db import lineage as db_lineage
from db import registry
from db.models import AuditLog, Erasure, ErasureStatus, ModelVersion, Recognition
from db.registry import Alias
from ml.network import seed_classes, seed_weights_path
from services import artifacts
from services.connections import Connections
from services.datasets import import_sources
from services.errors import ArtifactDeleted
from services.models import add_version

ERASED = 20


@pytest.fixture
def connections(settings):
    c = Connections(settings)
    yield c
    c.close()


def _nudged_seed_weights() -> bytes:
    """Weights that load like the seed's but are stored as an object of their own."""
    state = torch.load(io.BytesIO(seed_weights_path().read_bytes()), weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1e-4
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _tainted_production(c: Connections, seed: int, trained_on: list[uuid.UUID]) -> tuple[int, str]:
    """Production v2, a child of the seed trained on `trained_on`; then those doodles are
    erased. Returns (v2, the erasure's public id)."""
    version, _ = add_version(
        c.sessions,
        c.storage,
        _nudged_seed_weights(),
        classes=seed_classes(),
        source="test: trained on a player's doodles",
        actor="test",
        reason="test",
        alias=Alias.PRODUCTION,
        parent_id=seed,
        trained_on=trained_on,
    )
    with c.sessions.begin() as s:
        s.execute(delete(Recognition).where(Recognition.id.in_(trained_on)))
        s.get(ModelVersion, version).erased_data_at = dt.datetime.now(dt.UTC)
        erasure = Erasure(player_ref="ref", status=ErasureStatus.done, model_versions=[version])
        s.add(erasure)
        s.flush()
        return version, str(erasure.public_id)


def _run_flywheel() -> dict:
    result = CliRunner().invoke(cli, ["flows", "run", "flywheel"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _recognition_ids(c: Connections) -> list[uuid.UUID]:
    with c.sessions() as s:
        return list(s.scalars(select(Recognition.id).order_by(Recognition.id)))


def _ancestry(s, version_id: int) -> list[ModelVersion]:
    chain = []
    current = s.get(ModelVersion, version_id)
    while current is not None:
        chain.append(current)
        current = s.get(ModelVersion, current.parent_id) if current.parent_id else None
    return chain


def test_a_marked_production_is_replaced_by_a_candidate_from_the_clean_ancestor(
    flows_env, seed_version, connections, monkeypatch
):
    monkeypatch.setenv("DOODLE_GATE_MAX_WORD_DROP", "1")
    monkeypatch.setenv("DOODLE_GATE_MAX_OVERALL_DROP", "1")
    import_sources(connections.sessions, [str(PROJECT_ROOT / "data" / "quickdraw" / "simplified")])
    erased = _recognition_ids(connections)[:ERASED]
    tainted, receipt = _tainted_production(connections, seed_version, erased)

    headline = _run_flywheel()

    candidate = headline["candidate_version"]
    assert headline["production_version"] == tainted
    assert headline["promoted"] is True
    assert headline["erasure"]["clean_ancestor"] == seed_version
    assert headline["erasure"]["tainted_versions"] == [tainted]
    assert headline["erasure"]["replaced_by"] == candidate
    assert headline["erasure"]["receipts"] == [receipt]
    with connections.sessions() as s:
        assert registry.get_alias(s, Alias.PRODUCTION).id == candidate
        # Its whole lineage: no marked version, no erased doodle, and what it saw recorded.
        chain = _ancestry(s, candidate)
        assert [v.id for v in chain] == [candidate, seed_version]
        assert all(v.erased_data_at is None for v in chain)
        seen = db_lineage.version_examples(s, candidate)
        assert len(seen) == headline["training_examples"] > 0
        assert not seen & set(erased)
        assert s.scalars(select(Erasure)).one().replaced_by_version == candidate
        promote = s.scalars(select(AuditLog).where(AuditLog.action == "model.promote")).one()
        assert promote.actor == "flow:flywheel"
        assert f"v{tainted} was trained on erased doodles" in promote.details["reason"]
        assert receipt in promote.details["reason"]
    # The replaced weights are still in the alias history's last entries: kept for now.
    assert headline["weights_deleted"] == []
    assert artifacts.load_version(connections.sessions, connections.storage, tainted)


def test_without_a_candidate_the_clean_ancestor_itself_replaces_production(
    flows_env, seed_version, connections, monkeypatch
):
    monkeypatch.setenv("DOODLE_ERASED_WEIGHTS_HISTORY", "0")
    import_sources(connections.sessions, [str(PROJECT_ROOT / "data" / "quickdraw" / "simplified")])
    # The player's doodles were all the training data there was.
    tainted, receipt = _tainted_production(connections, seed_version, _recognition_ids(connections))

    headline = _run_flywheel()

    assert headline["candidate_version"] is None
    assert headline["reasons"] == ["no training data"]
    assert headline["erasure"]["replaced_by"] == seed_version
    assert headline["weights_deleted"] == [tainted]
    with connections.sessions() as s:
        assert registry.get_alias(s, Alias.PRODUCTION).id == seed_version
        assert s.scalars(select(Erasure)).one().replaced_by_version == seed_version
        promote = s.scalars(select(AuditLog).where(AuditLog.action == "model.promote")).one()
        assert (promote.actor, promote.details["to_version"]) == ("flow:flywheel", seed_version)
        assert receipt in promote.details["reason"]
        key = s.get(ModelVersion, tainted).artifact_key
    assert not connections.storage.exists(key)
    with pytest.raises(ArtifactDeleted):
        artifacts.load_version(connections.sessions, connections.storage, tainted)
