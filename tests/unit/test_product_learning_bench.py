"""The product learning benchmark's pure pieces: sets of new words (alike pairs), folds of
posted and held-out drawings, who posts what, the old words' test rows, and the figures."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.benchkit import load_benchkit

load_benchkit()

from benchkit.learning_data import new_word_sets  # noqa: E402
from benchkit.product_learning import junk_posts  # noqa: E402
from benchkit.product_learning_data import (  # noqa: E402
    ALIKE_PAIRS,
    PAIRS_PER_SET,
    WORDS_SEED,
    alike_word_sets,
    fold_split,
    old_rows,
    posts,
    recognition_body,
    word_sets,
)
from benchkit.product_learning_report import (  # noqa: E402
    repetition_figures,
    summaries,
)

CANDIDATES = sorted({w for p in ALIKE_PAIRS for w in p} | {f"word{i:02d}" for i in range(40)})


def _lines(word: str, count: int = 25) -> list[str]:
    return [json.dumps({"word": word, "drawing": [[[i, i + 1], [0, 9]]]}) for i in range(count)]


def test_sets_of_five_are_the_learning_benchmarks() -> None:
    assert word_sets(CANDIDATES, 3, 5) == new_word_sets(CANDIDATES, 3, 5, WORDS_SEED)


def test_sets_of_ten_hold_alike_pairs_and_are_disjoint_seeded_sorted() -> None:
    sets = alike_word_sets(CANDIDATES, 2)
    assert sets == alike_word_sets(CANDIDATES, 2)
    assert all(len(s) == 10 and s == sorted(s) for s in sets)
    assert not set(sets[0]) & set(sets[1])
    for k, words in enumerate(sets):
        for a, b in ALIKE_PAIRS[k * PAIRS_PER_SET : (k + 1) * PAIRS_PER_SET]:
            assert a in words and b in words
    assert word_sets(CANDIDATES, 2, 10) == sets


def test_alike_pairs_missing_from_the_candidates_are_skipped() -> None:
    without_mug = [w for w in CANDIDATES if w != "mug"]
    first = alike_word_sets(without_mug, 1)[0]
    assert "mug" not in first and "coffee cup" not in first
    assert {"circle", "donut"} <= set(first)


def test_too_many_sets_of_ten_are_refused() -> None:
    with pytest.raises(ValueError):
        alike_word_sets(CANDIDATES, len(ALIKE_PAIRS) // PAIRS_PER_SET + 1)


def test_each_fold_posts_twenty_and_holds_out_five_never_posted() -> None:
    lines = {"a": _lines("a"), "b": _lines("b")}
    held_over_folds: list[str] = []
    for fold in range(5):
        split = fold_split(lines, fold)
        for word in lines:
            assert len(split.posted[word]) == 20 and len(split.held_out[word]) == 5
            assert not set(split.posted[word]) & set(split.held_out[word])
            assert sorted(split.posted[word] + split.held_out[word]) == sorted(lines[word])
        held_over_folds += split.held_out["a"]
    assert sorted(held_over_folds) == sorted(lines["a"])  # each drawing tested once
    with pytest.raises(ValueError):
        fold_split(lines, 5)


def test_players_post_every_drawing_once_a_few_each() -> None:
    posted = fold_split({"a": _lines("a"), "b": _lines("b")}, 0).posted
    made = posts(posted, "s1f0", seed=3)
    assert len(made) == 40
    assert made == posts(posted, "s1f0", seed=3)
    assert sorted(json.dumps(p.drawing) for p in made) == sorted(
        json.dumps(json.loads(x)["drawing"]) for rows in posted.values() for x in rows
    )
    players = {p.player for p in made}
    assert len(players) == 10 and all(p.startswith("bench-s1f0-") for p in players)
    body = recognition_body(made[0])
    assert body["word"] == made[0].word and body["player_id"] == made[0].player
    assert body["consent"]["store"] and body["consent"]["train"]


def test_junk_gets_the_sets_words_as_prompts_and_players_of_its_own() -> None:
    junk = junk_posts(_lines("scribble", 3), ["a", "b"], "s1f0")
    assert [p.word for p in junk] == ["a", "b", "a"]
    assert len({p.player for p in junk}) == 3


def test_old_words_test_rows_are_each_files_last_100_which_no_install_imports() -> None:
    assert old_rows(1000) == range(900, 1000)
    assert old_rows(496) == range(396, 496)
    assert old_rows(60) == range(0, 60)


def _repetition(set_no: int, promoted: bool, new: float, old_after: float) -> dict[str, object]:
    return {
        "set": set_no,
        "fold": 0,
        "words": ["a", "b"],
        "cycle": {
            "promoted": promoted,
            "new_words": ["a", "b"],
            "relabel": {"accepted": 40, "review": 2, "undecided": 1, "seen": 43},
            "reasons": ["ok"],
        },
        "cycle_wall_seconds": 30.0,
        "old_before": {"top1": 0.95},
        "old_after": {"top1": old_after},
        "new_after": {"top1": new if promoted else 0.0, "top3": new if promoted else 0.0},
        **({} if promoted else {"candidate_new": {"top1": new, "top3": new}}),
        **({} if promoted else {"candidate_old": {"top1": 0.9}}),
    }


def test_figures_tell_served_from_learnt_and_summarise_per_set_and_overall() -> None:
    kept_out = repetition_figures(_repetition(1, False, 0.5, 0.95))
    assert kept_out["new_top1"] == 0.0 and kept_out["learnt_new_top1"] == 50.0
    assert kept_out["old_drop_points"] == 0.0 and kept_out["learnt_old_drop_points"] == 5.0
    served = repetition_figures(_repetition(2, True, 0.7, 0.93))
    assert served["new_top1"] == served["learnt_new_top1"] == 70.0
    assert served["old_drop_points"] == pytest.approx(2.0)
    assert (served["accepted"], served["review"], served["undecided"]) == (40, 2, 1)
    sums = summaries([kept_out, served])
    assert list(sums) == ["set 1", "set 2", "overall"]
    overall = sums["overall"]
    assert overall["new_top1"] == {"mean": 35.0, "min": 0.0, "max": 70.0}
    assert overall["promoted"] == 1 and overall["became_classes"] == 4 and overall["words"] == 4
