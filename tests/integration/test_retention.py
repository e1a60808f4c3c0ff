"""`doodle flows run retention`: game doodles older than DOODLE_RETENTION_DAYS leave
the rows, the objects and Redis; newer ones and imported dataset drawings stay; the
manifest of a version trained on removed doodles says how many went."""

from __future__ import annotations

import json
import uuid

import redis
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from cli.main import cli
from core import segments
from core.tasks import done_channel
from db.datasets import ImportedDrawing, add_imports, import_id
from db.labels import add_label
from db.models import InputFormat, LabelSource, ModelVersion, Recognition
from services.models import add_version
from tests.integration.test_erasure_removal import post
from workers.recognize import recognize_batch
from workers.runtime import WorkerRuntime


def _age(sessions: sessionmaker[Session], ids: list[uuid.UUID], days: int) -> None:
    with sessions.begin() as s:
        s.execute(
            text(
                "UPDATE recognitions SET created_at = now() - make_interval(days => :days) "
                "WHERE id = ANY(:ids)"
            ),
            {"days": days, "ids": ids},
        )


def _run_retention() -> dict:
    result = CliRunner().invoke(cli, ["flows", "run", "retention"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Recognition)) or 0


def test_old_game_doodles_leave_every_store_and_the_manifests_say_so(
    flows_env,
    worker_runtime: WorkerRuntime,
    seed_version: int,
    redis_client: redis.Redis,
    monkeypatch,
):
    monkeypatch.setenv("DOODLE_RETENTION_DAYS", "30")
    sessions = worker_runtime.sessions
    old, old_png = post(sessions, "p-old"), post(sessions, "p-old", png=True)
    recent = post(sessions, "p-new")
    recognize_batch(worker_runtime, [old, old_png, recent])
    assert worker_runtime.objects.flush()
    with sessions.begin() as s:
        add_label(s, old, "circle", LabelSource.reviewer, "admin:x")  # a golden candidate
        add_imports(
            s, [ImportedDrawing("test:1", "circle", bytes(784), InputFormat.bitmap)], "test"
        )
        segment = s.get(Recognition, old).strokes_key
        png_key = s.get(Recognition, old_png).png_key
    imported = import_id("test:1")
    _age(sessions, [old, old_png, imported], days=31)
    trained, _ = add_version(
        sessions,
        worker_runtime.storage,
        b"weights",
        classes=["circle"],
        source="test",
        actor="test",
        reason="test",
        parent_id=seed_version,
        dataset_manifest={"count": 3, "ids_sha256": "x"},
        trained_on=[old, recent, imported],
    )
    assert redis_client.exists(done_channel(old))

    headline = _run_retention()

    assert headline["retention_days"] == 30
    assert headline["removed"]["recognitions"] == 2
    assert headline["model_versions"] == {str(trained): 1}
    with sessions() as s:
        assert set(s.scalars(select(Recognition.id))) == {recent, imported}
        manifest = s.get(ModelVersion, trained).dataset_manifest
    assert manifest == {"count": 3, "ids_sha256": "x", "removed": {"retention": 1}}
    storage = worker_runtime.storage
    assert not storage.exists(png_key)
    # One segment held both strokes doodles: it is rewritten with the recent one only.
    assert [d["id"] for d in segments.decode(storage.get(segment))] == [str(recent)]
    assert not redis_client.exists(done_channel(old))

    # A second run finds nothing more to remove.
    again = _run_retention()
    assert again["removed"] == {} and again["model_versions"] == {}
    assert _count(sessions) == 2


def test_a_retention_of_zero_days_keeps_everything(
    flows_env, worker_runtime: WorkerRuntime, seed_version: int, monkeypatch
):
    monkeypatch.setenv("DOODLE_RETENTION_DAYS", "0")
    doodle = post(worker_runtime.sessions, "p-kept")
    _age(worker_runtime.sessions, [doodle], days=10_000)

    headline = _run_retention()

    assert headline == {
        "retention_days": 0,
        "removed": {},
        "model_versions": {},
        "idempotency_keys_pruned": 0,
    }
    assert _count(worker_runtime.sessions) == 1
