"""The whole loop, through the API: players draw words the model does not know, the
flywheel relabels, fine-tunes, evaluates, gates and promotes, and the new model knows
those words while the 20 original words stay within 2 points of where they were."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from core.settings import Settings
from db.datasets import PROVISIONAL_MIN, golden_examples
from db.models import Label, LabelSource, ModelVersion
from db.registry import Alias
from flows.flywheel import flywheel
from flows.relabel import relabel
from ml.evaluate import score
from ml.network import seed_classes
from ml.predict import Predictor
from ml.raster import rasterize
from services.datasets import import_sources
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, recognize
from tests.fixtures.players import as_player, secret_for

# Words the seed model rarely mistakes, with confidence, for one of its own (a
# confident "that is a bowtie" sends a doodle to review instead of into training).
NEW_WORDS = ["eye", "cat", "house", "car"]
POSTED = 20  # of each new word's 25 drawings; the other 5 are held out
HEADERS = {"X-API-Key": CLIENT_KEY}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def flow_settings(settings: Settings) -> Settings:
    # 20 doodles a word, of which each word's provisional test set holds back about a
    # fifth (at least 5). The gate is the default one (paired evidence) but for its
    # tolerances: with a default install's ~2,800 old-word test drawings it sees the
    # 1.5-point fall a cycle costs today (README, learning through the product) and at
    # times blocks the candidate; this test is of the loop, and checks the old words below.
    return dataclasses.replace(
        settings, new_word_min_examples=12, gate_max_overall_drop=0.02, gate_max_word_drop=0.05
    )


def _ndjson(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _base_dataset(shared: Path) -> list[str]:
    """The starting words' drawings: .npy bitmaps where there are some, ndjson otherwise
    (never both for one word: the first bitmap rows are the ndjson drawings)."""
    bitmaps = shared / "quickdraw" / "bitmaps"
    manifest = json.loads((bitmaps / "manifest.json").read_text())
    sources = []
    for word in seed_classes():
        if word in manifest:
            sources.append(str(bitmaps / f"{word}.npy"))
        else:
            sources.append(str(shared / "quickdraw" / "simplified" / f"{word}.ndjson"))
    return sources


def test_players_teach_the_model_new_words(
    client, worker_runtime, flow_context, db_session_factory, shared_data, seed_version
):
    imported = import_sources(db_session_factory, _base_dataset(shared_data), limit=500)
    assert imported.as_dict()

    held_out: dict[str, list] = {}
    posted: dict[str, str] = {}  # recognition id -> prompt word
    for word in NEW_WORDS:
        drawings = _ndjson(shared_data / "quickdraw" / "simplified" / f"{word}.ndjson")
        held_out[word] = [d["drawing"] for d in drawings[POSTED:]]
        for i, drawing in enumerate(d["drawing"] for d in drawings[:POSTED]):
            player = f"player-{word.replace(' ', '-')}-{i % 3}"
            response = client.post(
                "/v1/recognitions",
                json={
                    "drawing": drawing,
                    "word": word,
                    "player_id": player,
                    "consent": {"store": True, "train": True, "version": "2026-11"},
                },
                headers={**HEADERS, **as_player(secret_for(client, player))},
            )
            assert response.status_code == 202, response.get_data(as_text=True)
            rid = response.get_json()["id"]
            assert recognize(worker_runtime, uuid.UUID(rid)) == "done"
            posted[rid] = word

    # The relabel flow accepts most doodles and queues the doubtful ones for review.
    counts = relabel()
    assert counts["accepted"] + counts.get("review", 0) == len(posted)
    queue = client.get("/v1/admin/reviews?status=pending&limit=200", headers=ADMIN).get_json()
    assert {r["recognition_id"] for r in queue["reviews"]} <= set(posted)
    # No reviewer: each new word is gated on its provisional test set, players' own
    # doodles held back from training.
    report = flywheel()
    print(json.dumps(report, default=str))
    assert report["promoted"], report
    assert set(NEW_WORDS) <= set(report["new_words"])
    with db_session_factory() as s:
        reviewed = s.scalar(
            select(func.count()).select_from(Label).where(Label.source == LabelSource.reviewer)
        )
        gate = s.get(ModelVersion, report["candidate_version"]).metrics["gate"]
    assert reviewed == 0
    for word in NEW_WORDS:
        entry = gate["words"][word]
        print(f"{word}: {entry['candidate']['top1']:.2f} top-1 on {entry['n']} provisional")
        assert entry["kind"] == "new" and entry["n"] >= PROVISIONAL_MIN

    production = flow_context.alias_version(Alias.PRODUCTION)
    # The gated candidate, or its refit on every drawing (the held-back ones too).
    promoted = report.get("refit", {}).get("promoted_version", report["candidate_version"])
    assert production == promoted != seed_version
    model, classes = flow_context.load_version(production)
    predictor = Predictor(model, classes)

    # New words, on drawings no one posted: chance is 1 in len(classes).
    cases = [(w, d) for w, ds in held_out.items() for d in ds]
    predictions = predictor.predict(np.stack([rasterize(d) for _, d in cases]))
    new = score(predictions, [w for w, _ in cases])
    chance = 1 / len(classes)
    print(f"held-out new words: top-1 {new['top1']:.2f}, top-3 {new['top3']:.2f}", end=" ")
    print(f"(chance {chance:.2f})")
    # Measured 0.25-0.30 top-1 here: the price of never moving the old words' outputs.
    assert new["top1"] >= 4 * chance

    # Old words, on the golden set training never saw.
    seed_model, seed_words = flow_context.load_version(seed_version)
    with db_session_factory() as s:
        golden = golden_examples(s, golden_fraction=flow_context.settings.golden_fraction)
    old = golden.take([i for i, w in enumerate(golden.labels) if w in set(seed_words)])
    before = score(Predictor(seed_model, seed_words).predict(old.bitmaps), old.labels)["top1"]
    after = score(predictor.predict(old.bitmaps), old.labels)["top1"]
    print(f"20 original words on {len(old)} golden drawings: {before:.3f} -> {after:.3f}")
    assert after >= before - 0.02
