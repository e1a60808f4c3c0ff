"""Which new words a cycle leaves out to try again (flows.flywheel.unlearnt_words), and that
the training set then leaves them out (flows.finetune.select_training_set)."""

from __future__ import annotations

import uuid

import numpy as np

from db.datasets import Examples
from flows.finetune import select_training_set
from flows.flywheel import unlearnt_words


def outcome(words: dict[str, tuple[str, bool]], p_worse: float = 0.5) -> dict[str, object]:
    return {
        "promoted": False,
        "gate": {
            "overall": {"p_worse": p_worse},
            "words": {w: {"kind": kind, "blocking": b} for w, (kind, b) in words.items()},
        },
    }


def test_the_new_words_that_alone_blocked_are_left_out():
    gate = outcome({"eye": ("new", False), "rifle": ("new", True), "cup": ("old", False)})
    assert unlearnt_words(gate, ["eye", "rifle"], alpha=0.05) == ["rifle"]


def test_nothing_is_left_out_when_the_old_words_fell_or_no_new_word_passed():
    fell = outcome({"eye": ("new", False), "rifle": ("new", True)}, p_worse=0.01)
    assert unlearnt_words(fell, ["eye", "rifle"], alpha=0.05) == []
    word_fell = outcome({"eye": ("new", False), "rifle": ("new", True), "cup": ("old", True)})
    assert unlearnt_words(word_fell, ["eye", "rifle"], alpha=0.05) == []
    all_new_failed = outcome({"eye": ("new", True), "rifle": ("new", True)})
    assert unlearnt_words(all_new_failed, ["eye", "rifle"], alpha=0.05) == []
    promoted = {**outcome({"rifle": ("new", True)}), "promoted": True}
    assert unlearnt_words(promoted, ["eye", "rifle"], alpha=0.05) == []


def test_a_left_out_word_is_not_learnt_however_many_drawings_it_has():
    words = ["cup"] * 3 + ["eye"] * 12 + ["rifle"] * 12
    examples = Examples(
        [uuid.uuid4() for _ in words], np.zeros((len(words), 28, 28), np.uint8), words
    )
    chosen, new = select_training_set(examples, ["cup"], 10, 200, 1, leave_out=["rifle"])
    assert new == ["eye"] and "rifle" not in chosen.labels and chosen.labels.count("eye") == 12
