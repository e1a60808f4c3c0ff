"""The migrations: one linear history, reversible, named, and in step with db.models."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.pool import NullPool

from core.settings import PROJECT_ROOT
from db import migrate
from db.models import Base
from db.session import make_engine

MODEL_TABLES = set(Base.metadata.tables)
MODEL_ENUMS = {"input_format", "recognition_status", "label_source"}


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.make_config())


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _enums(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(text("SELECT typname FROM pg_type WHERE typtype = 'e'")))


def test_exactly_one_head() -> None:
    assert len(migrate.heads()) == 1, f"several heads, merge them: {migrate.heads()}"


def test_revision_files_are_date_prefixed_and_named() -> None:
    files = sorted(p for p in migrate.VERSIONS_DIR.glob("*.py") if p.name != "__init__.py")
    assert files, "no revisions"
    for path in files:
        assert migrate.FILE_NAME_RE.match(path.name), f"{path.name}: not YYYY_MM_DD_NNNN_slug.py"
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and docstring.strip(), f"{path.name}: no docstring"
    for script in _scripts().walk_revisions():
        assert script.doc and script.doc.strip(), f"{script.revision}: no message"
        assert migrate.REVISION_ID_RE.match(script.revision), (
            f"{script.revision}: not YYYYMMDD_NNNN"
        )
        name = Path(script.path).name
        y, m, d, n = migrate.FILE_NAME_RE.match(name).groups()  # type: ignore[union-attr]
        assert script.revision == f"{y}{m}{d}_{n}", f"{name} holds revision {script.revision}"


def test_upgrade_downgrade_upgrade(scratch_database_url: str) -> None:
    url = scratch_database_url
    engine = make_engine(url, poolclass=NullPool)
    try:
        assert migrate.current(url) is None

        migrate.upgrade(url)
        assert migrate.current(url) == migrate.heads()[0]
        assert _tables(engine) == MODEL_TABLES
        assert _enums(engine) == MODEL_ENUMS

        migrate.downgrade(url, "base")
        assert migrate.current(url) is None
        assert _tables(engine) == set()
        assert _enums(engine) == set(), "the downgrade left enum types behind"

        migrate.upgrade(url)
        assert migrate.current(url) == migrate.heads()[0]
        assert _tables(engine) == MODEL_TABLES
    finally:
        engine.dispose()


def test_every_revision_steps_down_and_up(scratch_database_url: str) -> None:
    """Each revision's downgrade undoes exactly its upgrade, one step at a time."""
    url = scratch_database_url
    revisions = [s.revision for s in reversed(list(_scripts().walk_revisions()))]
    for rev in revisions:
        migrate.upgrade(url, rev)
        assert migrate.current(url) == rev
    for rev in reversed(revisions):
        assert migrate.current(url) == rev
        migrate.downgrade(url, "-1")
    assert migrate.current(url) is None


def test_models_and_migrations_agree(database_url: str) -> None:
    """Autogenerate finds nothing to do: the migrated schema is exactly db.models."""
    engine = make_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], "db.models and migrations/ differ; write a revision:\n" + "\n".join(
        map(repr, diff)
    )


def test_concurrent_upgrades_take_turns(scratch_database_url: str) -> None:
    """Two processes migrating at once (compose migrate + make run) both succeed."""
    cmd = [sys.executable, "-m", "db.migrate", "--url", scratch_database_url, "upgrade"]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    assert migrate.current(scratch_database_url) == migrate.heads()[0]
