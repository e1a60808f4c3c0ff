"""The promotion gate on hand-made score() reports."""

from __future__ import annotations

import pytest

from ml.gate import GateDecision, decide


def _report(top1: float, words: dict[str, float], n: int = 100) -> dict:
    return {
        "n": n,
        "top1": top1,
        "top3": min(1.0, top1 + 0.05),
        "map3": top1,
        "per_word": {w: {"n": 25, "top1": v} for w, v in words.items()},
    }


PRODUCTION = _report(0.95, {"cup": 0.96, "hat": 0.92, "tree": 0.97})


def test_better_everywhere_promotes() -> None:
    candidate = _report(0.96, {"cup": 0.96, "hat": 0.94, "tree": 0.97})
    decision = decide(candidate, PRODUCTION, max_word_drop=0.02)
    assert decision == GateDecision(
        promote=True,
        reasons=[decision.reasons[0]],
        word_drops={"cup": 0.0, "hat": -0.02, "tree": 0.0},
    )
    assert "95.0% -> 96.0%" in decision.reasons[0]


def test_equal_overall_promotes() -> None:
    assert decide(PRODUCTION, PRODUCTION, max_word_drop=0.02).promote


def test_overall_drop_blocks() -> None:
    candidate = _report(0.949, {"cup": 0.96, "hat": 0.92, "tree": 0.97})
    decision = decide(candidate, PRODUCTION, max_word_drop=0.02)
    assert not decision.promote
    assert decision.reasons == [
        "overall top-1 fell 0.1 points (95.0% -> 94.9%); it must not fall at all"
    ]


def test_word_drop_beyond_margin_blocks_with_figures() -> None:
    candidate = _report(0.97, {"cup": 0.92, "hat": 0.96, "tree": 0.97})
    decision = decide(candidate, PRODUCTION, max_word_drop=0.02)
    assert not decision.promote
    assert decision.reasons == [
        "word 'cup' dropped 4.0 points (96.0% -> 92.0%), more than the 2.0 allowed"
    ]
    assert decision.word_drops["cup"] == pytest.approx(0.04)


def test_word_drop_at_the_margin_passes() -> None:
    candidate = _report(0.95, {"cup": 0.94, "hat": 0.92, "tree": 0.97})
    assert decide(candidate, PRODUCTION, max_word_drop=0.02).promote
    assert not decide(candidate, PRODUCTION, max_word_drop=0.01).promote


def test_every_failure_is_listed() -> None:
    candidate = _report(0.90, {"cup": 0.80, "hat": 0.80, "tree": 0.97})
    decision = decide(candidate, PRODUCTION, max_word_drop=0.02)
    assert not decision.promote
    assert len(decision.reasons) == 3
    assert decision.reasons[0].startswith("overall top-1 fell 5.0 points")
    assert decision.reasons[1].startswith("word 'cup' dropped 16.0 points")
    assert decision.reasons[2].startswith("word 'hat' dropped 12.0 points")


def test_new_words_reported_not_blocking() -> None:
    candidate = _report(0.95, {"cup": 0.96, "hat": 0.92, "tree": 0.97, "fish": 0.40})
    decision = decide(candidate, PRODUCTION, max_word_drop=0.02)
    assert decision.promote
    assert "new word 'fish': 40.0% top-1 (not gated)" in decision.reasons
    assert "fish" not in decision.word_drops


def test_word_missing_from_candidate_is_noted() -> None:
    candidate = _report(0.95, {"cup": 0.96, "hat": 0.92})
    decision = decide(candidate, PRODUCTION, max_word_drop=0.02)
    assert decision.promote
    assert any("'tree' is in production's report only" in r for r in decision.reasons)


def test_empty_candidate_blocks() -> None:
    decision = decide(_report(0.0, {}, n=0), _report(0.0, {}, n=0), max_word_drop=0.02)
    assert not decision.promote
    assert decision.reasons == ["the candidate was scored on no drawings"]


def test_negative_margin_rejected() -> None:
    with pytest.raises(ValueError):
        decide(PRODUCTION, PRODUCTION, max_word_drop=-0.01)


def test_as_dict() -> None:
    decision = decide(PRODUCTION, PRODUCTION, max_word_drop=0.02)
    assert decision.as_dict()["promote"] is True


def test_known_words_keep_new_words_out_of_the_overall() -> None:
    # Production scores 0 on the new word "fish": overall, the candidate looks better...
    production = _report(0.72, {"cup": 0.96, "fish": 0.0})
    candidate = _report(0.90, {"cup": 0.92, "fish": 0.84})
    assert decide(candidate, production, max_word_drop=0.05).promote
    # ...but on the words production knows it fell, and fish is only reported.
    decision = decide(candidate, production, max_word_drop=0.05, known_words=["cup"])
    assert not decision.promote
    assert decision.reasons[0] == (
        "top-1 on the words production knows fell 4.0 points (96.0% -> 92.0%); "
        "it must not fall at all"
    )
    assert "new word 'fish': 84.0% top-1 (not gated)" in decision.reasons
    assert decision.word_drops == {"cup": pytest.approx(0.04)}


def test_overall_may_fall_by_the_allowed_margin_only() -> None:
    production = _report(0.9455, {"cup": 0.96})
    candidate = _report(0.9444, {"cup": 0.96})
    assert not decide(candidate, production, max_word_drop=0.02).promote
    assert decide(candidate, production, max_word_drop=0.02, max_overall_drop=0.002).promote
    worse = _report(0.9355, {"cup": 0.96})
    decision = decide(worse, production, max_word_drop=0.02, max_overall_drop=0.005)
    assert not decision.promote
    assert decision.reasons[0] == (
        "overall top-1 fell 1.0 points (94.5% -> 93.5%); more than the 0.5 allowed"
    )
    with pytest.raises(ValueError):
        decide(production, production, max_word_drop=0.02, max_overall_drop=-0.01)
