"""`doodle run`'s seed import (cli.dev.ensure_seed_model) on a fresh database: the seed
model as production and the sample of its words' drawings, once; in-process, through the
services, and without loading torch until there is something to import."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import func, select

from cli.dev import SAMPLE_BITMAPS, SAMPLE_DATA, ensure_seed_model
from core.settings import PROJECT_ROOT
from db import registry
from db.models import Label, ModelVersion, Recognition
from db.registry import Alias
from ml.network import seed_classes
from services.connections import Connections

_STARTS = json.loads((SAMPLE_BITMAPS / "manifest.json").read_text())["words"]
# 25 simplified drawings a word, and each bitmap file's rows from its start row on.
SAMPLE_DRAWINGS = 25 * len(list(SAMPLE_DATA.glob("*.ndjson"))) + sum(
    entry["rows"] - entry["start"] for entry in _STARTS.values()
)


def _counts(settings) -> tuple[int, int, int]:
    """(model versions, recognitions, labels)."""
    connections = Connections(settings)
    try:
        with connections.sessions() as s:
            return tuple(  # type: ignore[return-value]
                s.scalar(select(func.count()).select_from(table)) or 0
                for table in (ModelVersion, Recognition, Label)
            )
    finally:
        connections.close()


def test_a_fresh_database_gets_the_seed_model_as_production_and_the_sample(settings, capsys):
    assert ensure_seed_model(settings) is True

    connections = Connections(settings)
    try:
        with connections.sessions() as s:
            production = registry.get_alias(s, Alias.PRODUCTION)
            assert production is not None
            classes, key = list(production.classes), production.artifact_key
        assert connections.storage.get(key)  # the weights are stored where the row says
    finally:
        connections.close()
    assert classes == seed_classes()
    assert _counts(settings) == (1, SAMPLE_DRAWINGS, SAMPLE_DRAWINGS)
    # The two JSON lines `doodle models import` and `doodle data import` printed.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    assert [line.get("imported") for line in lines] == [True, SAMPLE_DRAWINGS]


def test_a_second_call_imports_nothing(settings):
    ensure_seed_model(settings)
    before = _counts(settings)

    assert (ensure_seed_model(settings), _counts(settings)) == (False, before)


def test_loading_doodle_run_does_not_load_torch():
    code = "import sys, cli.main; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
