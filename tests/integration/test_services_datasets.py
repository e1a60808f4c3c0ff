"""services.datasets on real Postgres: its refusals are service errors that say what was
kept (the CLI's messages and exit codes are tested in test_data_import)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import Recognition
from services.datasets import BadSource, ImportFailed, import_sources
from services.errors import ServiceError


def _recognitions(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Recognition)) or 0


def test_a_bad_source_refuses_the_whole_import_before_anything(
    db_session_factory, shared_data, tmp_path
):
    good = shared_data / "quickdraw" / "simplified" / "cup.ndjson"
    with pytest.raises(BadSource, match="no such file or folder"):
        import_sources(db_session_factory, [str(good), str(tmp_path / "missing.ndjson")])
    assert _recognitions(db_session_factory) == 0


def test_a_failed_source_keeps_the_sources_before_it_and_reports_them(
    db_session_factory, shared_data, tmp_path
):
    good = shared_data / "quickdraw" / "simplified" / "cup.ndjson"
    bad = tmp_path / "hat.ndjson"
    bad.write_text("not json\n")
    with pytest.raises(ImportFailed) as failed:
        import_sources(db_session_factory, [str(good), str(bad)])
    report = failed.value.report
    assert isinstance(failed.value, ServiceError)
    assert (failed.value.source, report.sources, report.as_dict()["imported"]) == (
        str(bad),
        [str(good)],
        25,
    )
    assert _recognitions(db_session_factory) == 25  # cup's drawings, none of hat's
