"""`doodle flows run flywheel`: one cycle in-process, its headline printed as JSON.

Each test arranges the data so that the cycle has one possible outcome.
"""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from cli.main import cli
from core.settings import PROJECT_ROOT
from db import registry
from db.models import AuditLog, ModelVersion, TrainingRun
from db.registry import Alias
from services.datasets import import_sources


def _run_flywheel() -> dict:
    result = CliRunner().invoke(cli, ["flows", "run", "flywheel"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _only_run(db_session_factory) -> TrainingRun:
    with db_session_factory() as s:
        return s.scalars(select(TrainingRun)).one()


def test_a_cycle_with_data_and_a_gate_that_allows_any_drop_promotes(
    flows_env, seed_version, db_session_factory, monkeypatch
):
    # Any fine-tuned candidate passes this gate (no fall can exceed 100 points, and a tie
    # is enough): the outcome cannot be "rejected".
    monkeypatch.setenv("DOODLE_GATE_MAX_WORD_DROP", "1")
    monkeypatch.setenv("DOODLE_GATE_MAX_OVERALL_DROP", "1")
    monkeypatch.setenv("DOODLE_GATE_REQUIRE_GAIN", "false")
    import_sources(db_session_factory, [str(PROJECT_ROOT / "data" / "quickdraw" / "simplified")])

    headline = _run_flywheel()

    assert headline["production_version"] == seed_version
    assert headline["promoted"] is True
    candidate_id = headline["candidate_version"]
    assert candidate_id is not None and candidate_id != seed_version
    assert set(headline["golden_top1"]) == {"candidate", "production"}
    run = _only_run(db_session_factory)
    assert (run.status, run.parent_version_id) == ("promoted", seed_version)
    assert run.candidate_version_id == candidate_id
    with db_session_factory() as s:
        candidate = s.get(ModelVersion, candidate_id)
        assert candidate.parent_id == seed_version
        assert candidate.metrics["golden"]["top1"] == headline["golden_top1"]["candidate"]
        assert candidate.metrics["gate"]["promote"] is True
        assert registry.get_alias(s, Alias.PRODUCTION).id == candidate_id
        assert registry.get_alias(s, Alias.CANDIDATE).id == candidate_id
        # The gate promotes as an operator does: the audit log says who moved production.
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "model.promote")).all()
        moves = [(a.actor, a.details["to_version"]) for a in audits]
        assert moves == [("flow:flywheel", candidate_id)]


def test_a_cycle_without_training_data_is_skipped(flows_env, seed_version, db_session_factory):
    headline = _run_flywheel()

    assert headline["production_version"] == seed_version
    assert headline["promoted"] is False
    assert headline["candidate_version"] is None
    assert headline["reasons"] == ["no training data"]
    run = _only_run(db_session_factory)
    assert (run.status, run.candidate_version_id) == ("skipped", None)
    with db_session_factory() as s:
        assert registry.get_alias(s, Alias.PRODUCTION).id == seed_version
        assert registry.get_alias(s, Alias.CANDIDATE) is None
