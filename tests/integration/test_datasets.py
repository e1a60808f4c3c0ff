"""Training and golden sets from the recognitions table, against real Postgres."""

from __future__ import annotations

import hashlib
import random
import time
import uuid

import numpy as np
import pytest
from sqlalchemy import insert, select, update

from db import labels
from db.datasets import (
    Examples,
    drawing_identity,
    evaluation_examples,
    golden_examples,
    is_golden,
    replay_sample,
    training_examples,
)
from db.models import (
    Consent,
    InputFormat,
    Label,
    LabelSource,
    Player,
    Recognition,
    RecognitionOrigin,
    RecognitionStatus,
)
from tests.integration.test_labels import game_doodle, imported_drawing

FRACTION = 0.3


# -- is_golden: a pure function ----------------------------------------------------------


def test_is_golden_is_deterministic_and_near_the_fraction():
    ids = [uuid.UUID(int=random.Random(7).getrandbits(128) ^ i) for i in range(20_000)]
    golden = [is_golden(i, "cup", 0.2) for i in ids]
    assert golden == [is_golden(i, "cup", 0.2) for i in ids]
    assert 0.19 < sum(golden) / len(ids) < 0.21
    assert not any(is_golden(i, "cup", 0.0) for i in ids[:1000])
    assert all(is_golden(i, "cup", 1.0) for i in ids[:1000])
    # A larger fraction only adds drawings to the golden set.
    assert all(is_golden(i, "cup", 0.3) for i, g in zip(ids, golden, strict=True) if g)
    # Per word: another word splits the same ids independently.
    other = [is_golden(i, "hat", 0.2) for i in ids]
    assert other != golden and 0.19 < sum(other) / len(ids) < 0.21


def test_is_golden_is_pinned_to_sha256_of_word_and_id():
    # Changing the hash would silently move drawings between training and golden.
    rid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    digest = hashlib.sha256(f"cup\x1f{rid}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    assert is_golden(rid, "cup", u + 1e-9) and not is_golden(rid, "cup", u)


# -- the sets ----------------------------------------------------------------------------


@pytest.fixture
def corpus(db_session_factory):
    """Imports, reviewed and automatically labelled game doodles, and ineligible ones."""
    ids: dict[str, set[uuid.UUID]] = {"import": set(), "reviewer": set(), "auto": set()}
    excluded: set[uuid.UUID] = set()
    with db_session_factory.begin() as s:
        for word in ("cup", "hat"):
            for n in range(60):
                ids["import"].add(imported_drawing(s, word, n))
        for n in range(40):
            rid = game_doodle(s, player=f"r{n % 3}", word="cup")
            labels.add_label(s, rid, "cup", LabelSource.prompt, "flow")
            labels.add_label(s, rid, "star", LabelSource.reviewer, "admin")
            ids["reviewer"].add(rid)
        for n in range(40):
            rid = game_doodle(s, player=f"a{n % 3}", word="tree")
            labels.add_label(s, rid, "tree", LabelSource.prompt, "flow")
            ids["auto"].add(rid)
        # Labelled, but no longer allowed to be trained on, or not usable.
        for player in ("withdrawn", "erased"):
            for _ in range(10):
                rid = game_doodle(s, player=player, word="cup")
                labels.add_label(s, rid, "cup", LabelSource.reviewer, "admin")
                excluded.add(rid)
        unlabelled = game_doodle(s, player="a0")
        no_bitmap = game_doodle(s, player="a0", bitmap=False)
        labels.add_label(s, no_bitmap, "cup", LabelSource.reviewer, "admin")
        excluded |= {unlabelled, no_bitmap}
        s.execute(
            update(Consent)
            .where(Consent.player_id == "withdrawn")
            .values(withdrawn_at=Consent.granted_at)
        )
        s.execute(update(Player).where(Player.id == "erased").values(erased_at=Player.created_at))
    return ids, excluded


def test_golden_and_training_are_disjoint_and_cover_the_eligible(db_session_factory, corpus):
    ids, excluded = corpus
    with db_session_factory() as s:
        train = training_examples(s, golden_fraction=FRACTION)
        golden = golden_examples(s, golden_fraction=FRACTION)
        again = (
            training_examples(s, golden_fraction=FRACTION),
            golden_examples(s, golden_fraction=FRACTION),
        )
        test = evaluation_examples(s, golden_fraction=FRACTION)
    assert set(train.ids).isdisjoint(test.ids)
    assert set(train.ids) | set(test.ids) == ids["import"] | ids["reviewer"] | ids["auto"]
    assert not excluded & (set(train.ids) | set(test.ids))
    # The test set: the golden drawings, and "tree"'s provisional ones (it has no golden).
    provisional = set(test.ids) - set(golden.ids)
    assert provisional and provisional < ids["auto"]
    assert set(golden.ids) < set(test.ids)
    # Automatic labels never make a drawing golden; the others split by is_golden.
    assert not ids["auto"] & set(golden.ids)
    assert set(golden.sources) == {"import", "reviewer"}
    for ex in (train, golden):
        for rid, label, bitmap in zip(ex.ids, ex.labels, ex.bitmaps, strict=True):
            if rid not in ids["auto"]:
                identity = drawing_identity(bitmap.tobytes())
                assert is_golden(identity, label, FRACTION) == (ex is golden)
    # Both halves get some of every vouched-for word.
    assert {"cup", "hat", "star"} <= set(golden.words)
    assert {"cup", "hat", "star", "tree"} == set(train.words)
    # The reviewer's word, not the prompt.
    assert {
        w for rid, w in zip(train.ids, train.labels, strict=True) if rid in ids["reviewer"]
    } == {"star"}
    # Deterministic: same rows, same order (by id), same manifest.
    assert again[0].ids == train.ids == sorted(train.ids)
    assert again[1].ids == golden.ids
    assert again[0].manifest() == train.manifest()
    assert np.array_equal(again[0].bitmaps, train.bitmaps)


def test_bitmaps_line_up_with_ids(db_session_factory, corpus):
    with db_session_factory() as s:
        train = training_examples(s, golden_fraction=FRACTION)
        stored = dict(
            s.execute(
                select(Recognition.id, Recognition.bitmap).where(Recognition.id.in_(train.ids))
            ).all()
        )
    assert train.bitmaps.dtype == np.uint8 and train.bitmaps.shape == (len(train), 28, 28)
    for i, rid in enumerate(train.ids):
        assert train.bitmaps[i].tobytes() == stored[rid]


def test_words_filter(db_session_factory, corpus):
    with db_session_factory() as s:
        only = training_examples(s, golden_fraction=FRACTION, words={"hat", "tree"})
        golden = golden_examples(s, golden_fraction=FRACTION, words={"hat"})
        full = training_examples(s, golden_fraction=FRACTION)
    assert set(only.words) == {"hat", "tree"}
    assert len(only) == sum(1 for w in full.labels if w in {"hat", "tree"})
    assert set(golden.words) == {"hat"}


def test_consent_withdrawn_later_removes_doodles_from_both_sets(db_session_factory, corpus):
    with db_session_factory() as s:
        before = training_examples(s, golden_fraction=FRACTION)
        before_golden = evaluation_examples(s, golden_fraction=FRACTION)
    with db_session_factory.begin() as s:
        for player in ("a0", "r0"):  # automatic labels, and reviewed (some golden)
            s.execute(
                update(Consent)
                .where(Consent.player_id == player)
                .values(withdrawn_at=Consent.granted_at)
            )
    with db_session_factory() as s:
        after = training_examples(s, golden_fraction=FRACTION)
        after_golden = evaluation_examples(s, golden_fraction=FRACTION)
        theirs = set(
            s.scalars(select(Recognition.id).where(Recognition.player_id.in_(["a0", "r0"])))
        )
    was, now = set(before.ids) | set(before_golden.ids), set(after.ids) | set(after_golden.ids)
    assert was - now == theirs & was and len(was - now) == 14 + 14  # n % 3 == 0, n < 40
    assert not now & theirs
    assert theirs & set(before_golden.ids), "expected some of r0's doodles to be golden"
    assert before.manifest()["ids_sha256"] != after.manifest()["ids_sha256"]


def test_manifest_is_stable_and_counts_words_and_sources(db_session_factory, corpus):
    with db_session_factory() as s:
        train = training_examples(s, golden_fraction=FRACTION)
        held = evaluation_examples(s, golden_fraction=FRACTION, words={"tree"})
    m = train.manifest()
    assert m["count"] == len(train)
    # "tree" has no golden drawing: its provisional test set is held back from training.
    kept = 40 - len(held)
    assert m["words"]["tree"] == {"count": kept, "sources": {"prompt": kept}}
    assert sum(w["count"] for w in m["words"].values()) == len(train)
    assert sum(m["sources"].values()) == len(train)
    # Independent of the order of the examples.
    order = list(range(len(train)))
    random.Random(3).shuffle(order)
    assert train.take(order).manifest() == m
    assert len(m["ids_sha256"]) == 64


def test_empty_database_gives_empty_sets(db_session_factory):
    with db_session_factory() as s:
        train = training_examples(s, golden_fraction=FRACTION)
        golden = golden_examples(s, golden_fraction=FRACTION)
    assert len(train) == len(golden) == 0
    assert train.bitmaps.shape == (0, 28, 28)
    assert train.manifest()["count"] == 0


# -- replay ------------------------------------------------------------------------------


def _examples(per_word: dict[str, int]) -> Examples:
    ids, words = [], []
    for word, n in per_word.items():
        for i in range(n):
            ids.append(uuid.uuid5(uuid.NAMESPACE_DNS, f"{word}{i}"))
            words.append(word)
    bitmaps = np.arange(len(ids) * 784, dtype=np.uint64).astype(np.uint8).reshape(-1, 28, 28)
    return Examples(ids=ids, bitmaps=bitmaps, labels=words, sources=["import"] * len(ids))


def test_replay_sample_is_deterministic_per_word_and_order_free():
    ex = _examples({"cup": 50, "hat": 5, "tree": 30})
    sample = replay_sample(ex, per_word=10, seed=1)
    assert sorted(sample.labels) == ["cup"] * 10 + ["hat"] * 5 + ["tree"] * 10
    assert replay_sample(ex, per_word=10, seed=1).ids == sample.ids
    assert set(replay_sample(ex, per_word=10, seed=2).ids) != set(sample.ids)
    # Rows stay together.
    index = {rid: i for i, rid in enumerate(ex.ids)}
    for j, rid in enumerate(sample.ids):
        assert np.array_equal(sample.bitmaps[j], ex.bitmaps[index[rid]])
        assert sample.labels[j] == ex.labels[index[rid]]
    # The same sample whatever the input order.
    order = list(range(len(ex)))
    random.Random(5).shuffle(order)
    assert set(replay_sample(ex.take(order), per_word=10, seed=1).ids) == set(sample.ids)
    assert len(replay_sample(ex, per_word=0, seed=1)) == 0
    assert len(replay_sample(Examples.empty(), per_word=5, seed=1)) == 0


def test_examples_concat_and_shape_checks():
    a, b = _examples({"cup": 3}), _examples({"hat": 2})
    both = Examples.concat([a, Examples.empty(), b])
    assert both.labels == ["cup"] * 3 + ["hat"] * 2
    assert both.bitmaps.shape == (5, 28, 28)
    with pytest.raises(ValueError, match="mismatch"):
        Examples(ids=a.ids, bitmaps=a.bitmaps[:2], labels=a.labels)


# -- speed -------------------------------------------------------------------------------


def test_ten_thousand_examples_in_one_query(db_session_factory):
    """Bulk rows straight into the tables; the read is what is timed (printed with -s)."""
    n = 10_000
    rng = np.random.default_rng(0)
    blobs = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    rows = [
        {
            "id": uuid.UUID(int=int(rng.integers(1, 2**63)) << 64 | i),
            "origin": RecognitionOrigin.import_,
            "external_id": f"bulk:{i}",
            "word": f"w{i % 20}",
            "input_format": InputFormat.bitmap,
            "status": RecognitionStatus.done,
            "attempts": 0,
            "consent_store": False,
            "consent_train": False,
            "bitmap": blobs[i].tobytes(),
        }
        for i in range(n)
    ]
    with db_session_factory.begin() as s:
        s.execute(insert(Recognition), rows)
        s.execute(
            insert(Label),
            [
                {"recognition_id": r["id"], "label": r["word"], "source": "import", "actor": "t"}
                for r in rows
            ],
        )
    with db_session_factory() as s:
        t0 = time.perf_counter()
        train = training_examples(s, golden_fraction=0.2)
        t1 = time.perf_counter()
        golden = golden_examples(s, golden_fraction=0.2)
    print(f"\ntraining_examples: {len(train)} rows in {t1 - t0:.3f} s")
    assert len(train) + len(golden) == n
    assert 0.17 < len(golden) / n < 0.23
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    for j in (0, len(train) // 2, len(train) - 1):
        assert train.bitmaps[j].tobytes() == blobs[by_id[train.ids[j]]].tobytes()
