"""`doodle flows run flywheel`: one cycle in-process, its headline printed as JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from cli.data import import_sources
from cli.main import cli
from core.settings import PROJECT_ROOT
from db.models import ModelVersion, TrainingRun


def test_flows_run_flywheel_prints_the_headline(
    settings, seed_version, prefect_harness, db_session_factory, monkeypatch, tmp_path
):
    for name, value in {
        "DATABASE_URL": settings.db_url,
        "STORAGE_URL": settings.object_store_url,
        "DOODLE_HOME": str(settings.home),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }.items():
        monkeypatch.setenv(name, value)  # restored after the test, whatever the CLI sets
    import_sources(db_session_factory, [str(PROJECT_ROOT / "data" / "quickdraw" / "simplified")])

    result = CliRunner().invoke(cli, ["flows", "run", "flywheel"])

    assert result.exit_code == 0, result.output
    headline = json.loads(result.output.strip().splitlines()[-1])
    assert headline["production_version"] == seed_version
    assert {"promoted", "candidate_version", "new_words", "timings"} <= set(headline)
    with db_session_factory() as s:
        run = s.scalars(select(TrainingRun)).one()
    assert run.parent_version_id == seed_version
    assert run.candidate_version_id == headline["candidate_version"]
    assert run.status in {"promoted", "rejected", "skipped"}
    if headline["candidate_version"] is not None:
        assert set(headline["golden_top1"]) == {"candidate", "production"}
        with db_session_factory() as s:
            candidate = s.get(ModelVersion, headline["candidate_version"])
            assert candidate.metrics["golden"]["top1"] == headline["golden_top1"]["candidate"]
            assert candidate.metrics["gate"]["promote"] == headline["promoted"]
